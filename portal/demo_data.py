"""Demo data drawn from our users' plans (shared/reference): tiers, namespaces, windows, services."""

USERS = [
    # username, roles, description
    ("admin", ["admin"], "admin: everything"),
    ("dana", ["deployer"], "deployer: releases, deployments, dev/preview environments"),
    ("rita", ["approver"], "release manager: approves production"),
    ("omar", ["approver"], "second approver"),
    ("audrey", ["viewer"], "auditor: read-only, audit log"),
]

ENVIRONMENTS = [
    {"name": "Development", "slug": "dev", "tier": "development", "team": "platform",
     "description": "Shared integration environment; every merge to main lands here."},
    {"name": "Staging", "slug": "staging", "tier": "staging", "team": "platform",
     "description": "Production-like; blue-green rehearsal; every deployment is verified for 30 s and rolled back by itself if it fails."},
    {"name": "Production", "slug": "production", "tier": "production", "team": "platform",
     "description": "Customer traffic. Two approvals, no self-approval, a pre-deployment checklist."},
    {"name": "Preview: checkout redesign", "slug": "pr-481-checkout", "tier": "preview", "team": "storefront",
     "ttl_hours": 72, "description": "Preview of PR #481; expires after 72 hours."},
]

RULES = {
    # No deployment windows in the demo, so the whole flow (and staging's verification story, a release
    # rolled back by itself a minute after start) can be tried at any hour.
    "staging": {"required_approvals": 1},
    "production": {"required_approvals": 2, "prevent_self_approval": True,
                   "checklist": ["Database migration reviewed", "On-call engineer informed"]},
}


def manifest(port, cpu_request="250m", memory_request="256Mi", cpu_limit="1", memory_limit="512Mi", extra=""):
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${{service}}
  labels:
    app: ${{service}}
spec:
  replicas: ${{replicas}}
  selector:
    matchLabels:
      app: ${{service}}
  template:
    metadata:
      labels:
        app: ${{service}}
    spec:
      containers:
        - name: ${{service}}
          image: ${{image}}
          ports:
            - containerPort: {port}
          env:
            - name: APP_ENV
              value: ${{environment}}
          readinessProbe:
            httpGet:
              path: /health
              port: {port}
            initialDelaySeconds: 5
            periodSeconds: 10
          livenessProbe:
            httpGet:
              path: /health
              port: {port}
            initialDelaySeconds: 15
            periodSeconds: 20
          resources:
            requests:
              cpu: {cpu_request}
              memory: {memory_request}
            limits:
              cpu: "{cpu_limit}"
              memory: {memory_limit}
---
apiVersion: v1
kind: Service
metadata:
  name: ${{service}}
spec:
  selector:
    app: ${{service}}
  ports:
    - port: 80
      targetPort: {port}
{extra}"""


SERVICES = [
    {"name": "web", "team": "storefront", "strategy": "blue-green", "health_path": "/health",
     "description": "React storefront behind nginx.", "manifest": manifest(3000)},
    {"name": "api", "team": "platform", "strategy": "rolling", "health_path": "/health",
     "description": "FastAPI backend (3 replicas in production, HPA 3-10).",
     "manifest": manifest(8000, "500m", "512Mi", "2", "1Gi", extra="""---
apiVersion: v1
kind: ConfigMap
metadata:
  name: ${service}-config
data:
  LOG_LEVEL: info
  APP_VERSION: "${version}"
""")},
    {"name": "worker", "team": "platform", "strategy": "rolling", "health_path": "/health",
     "description": "Background worker (queue consumers).", "manifest": manifest(8080, "250m", "512Mi", "1", "1Gi")},
]

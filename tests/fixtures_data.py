"""Realistic manifests for tests and the demo (shapes taken from our users' plans in shared/reference)."""

# The container's requests and limits, as WEB_MANIFEST has them; without them a manifest runs only where
# a LimitRange gives defaults (self-service templates) and fails the policy of tiers that require them.
WEB_RESOURCES = """\
          resources:
            requests:
              cpu: 250m
              memory: 256Mi
            limits:
              cpu: "1"
              memory: 512Mi
"""

WEB_MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${service}
  labels:
    app: ${service}
spec:
  replicas: ${replicas}
  selector:
    matchLabels:
      app: ${service}
  template:
    metadata:
      labels:
        app: ${service}
    spec:
      containers:
        - name: ${service}
          image: ${image}
          ports:
            - containerPort: 8000
          env:
            - name: APP_ENV
              value: ${environment}
          readinessProbe:
            httpGet:
              path: /health
              port: 8000
            initialDelaySeconds: 5
            periodSeconds: 10
          livenessProbe:
            httpGet:
              path: /health
              port: 8000
            initialDelaySeconds: 15
            periodSeconds: 20
""" + WEB_RESOURCES + """\
---
apiVersion: v1
kind: Service
metadata:
  name: ${service}
spec:
  selector:
    app: ${service}
  ports:
    - port: 80
      targetPort: 8000
"""

WEB_MANIFEST_WITHOUT_RESOURCES = WEB_MANIFEST.replace(WEB_RESOURCES, "")

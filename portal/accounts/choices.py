VIEWER = "viewer"
DEPLOYER = "deployer"
APPROVER = "approver"
ADMIN = "admin"

ROLE_CHOICES = [
    (VIEWER, "Viewer (read)"),
    (DEPLOYER, "Deployer (releases, deployments, development/preview environments)"),
    (APPROVER, "Approver (approve or reject)"),
    (ADMIN, "Admin (everything)"),
]
ROLES = [value for value, _ in ROLE_CHOICES]

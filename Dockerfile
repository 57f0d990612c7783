# Gantry: one image for every process (web, worker, scheduler, migrate); the command picks the role.
#
#   docker build -t gantry .
#   docker run --rm gantry python manage.py migrate --noinput        # once per release
#   docker run -p 8000:8000 gantry                                     # web (default CMD)
#   docker run gantry python manage.py rqworker deploy backups health default
#   docker run gantry python manage.py scheduler
#
# Configuration comes from the environment at run time (DATABASE_URL, REDIS_URL, SECRET_KEY,
# ALLOWED_HOSTS, GANTRY_*); nothing secret is baked into the image.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# pg_dump / pg_restore for backups. Debian bookworm ships client 15, and pg_dump refuses a server
# of a newer major version: to back up PostgreSQL 16+, install the matching client from
# apt.postgresql.org instead.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 gantry \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/gantry \
       --shell /usr/sbin/nologin gantry

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

# The source stays owned by root: the app user can read it but not change it.
COPY . .

# Static files are collected (and fingerprinted by whitenoise) at build time. Settings refuse to
# load without SECRET_KEY when DEBUG is off, so a throwaway key is given to this one command only.
RUN SECRET_KEY=collectstatic-build-only-not-a-secret python manage.py collectstatic --noinput \
    && python -m compileall -q .

USER 10001:10001

EXPOSE 8000

# /healthz only says the process answers; readiness (database, Redis) is /readyz. Slim images have
# no curl, so Python asks. The Host header must be in ALLOWED_HOSTS, hence "localhost".
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.Request('http://127.0.0.1:8000/healthz', headers={'Host': 'localhost'}); sys.exit(0 if urllib.request.urlopen(r, timeout=4).status == 200 else 1)"]

CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]

# Signoff: human sign-off for workflow steps, done in Slack.
#   docker build -t signoff .
#   docker run -p 3000:3000 -e SLACK_BOT_TOKEN=... -e SLACK_SIGNING_SECRET=... \
#     -e SIGNOFF_DATABASE_URL=postgresql://... signoff
# Without Slack credentials `signoff serve` starts the local sandbox instead.

# -- builder: the project installed into a virtualenv, the same `pip install .` as the README --
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/signoff
WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY bot ./bot
COPY examples ./examples
RUN /opt/signoff/bin/python -m pip install --no-cache-dir .

# -- runtime: the virtualenv only, run by an unprivileged user --------------------------------
FROM python:3.11-slim
ENV PATH=/opt/signoff/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SIGNOFF_PORT=3000 \
    SIGNOFF_DATABASE_URL=sqlite:////data/signoff.db
RUN groupadd --system --gid 10001 signoff \
    && useradd --system --uid 10001 --gid signoff --home-dir /data --create-home signoff
COPY --from=builder /opt/signoff /opt/signoff
USER 10001:10001
WORKDIR /data
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SIGNOFF_PORT', '3000'), timeout=4)"]
CMD ["signoff", "serve"]

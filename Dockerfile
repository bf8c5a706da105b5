# The image for ruralwater's Python services: collector, api (and its notify loop), analysis.
# Each compose service picks its program with `command:`, e.g. ["python", "-m", "collector"].

# ---- build: turn the project into a wheel, so the runtime image holds no source tree.
FROM python:3.11-slim AS build
WORKDIR /src
# The whole context (trimmed by .dockerignore): pyproject.toml decides which packages ship.
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- runtime
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels

# A fixed, unprivileged uid so volume ownership is predictable across rebuilds.
RUN groupadd --system --gid 10001 ruralwater \
    && useradd --system --uid 10001 --gid ruralwater --home-dir /var/lib/ruralwater \
       --shell /usr/sbin/nologin ruralwater \
    && mkdir -p /var/lib/ruralwater/collector /var/lib/ruralwater/analysis \
    && chown -R ruralwater:ruralwater /var/lib/ruralwater
# Named volumes mounted here start with this ownership, so the spool is writable.
VOLUME ["/var/lib/ruralwater/collector", "/var/lib/ruralwater/analysis"]
WORKDIR /var/lib/ruralwater
USER ruralwater

CMD ["python", "-m", "collector"]

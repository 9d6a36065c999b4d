# One image for every component; the first argument picks it:
#   docker run IMAGE jobs|ingest|extract|gateway|operator|migrate|cleanup TASK
# Build: docker build -t bytereview .

# --- build: compile the wheels in a throw-away stage -------------------------------------
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The same pyproject as `make up` (pip into a virtualenv), without the dev extra and not editable.
RUN python -m venv /opt/bytereview \
 && /opt/bytereview/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/bytereview/bin/pip install --no-cache-dir .

# --- run: the virtualenv and the few shared libraries OCR needs; no compilers --------------
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 bytereview \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin bytereview
COPY --from=build /opt/bytereview /opt/bytereview
ENV PATH=/opt/bytereview/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BYTEREVIEW_ENV=production \
    BYTEREVIEW_DATA_DIR=/tmp/bytereview
USER 10001:10001
EXPOSE 8080 50051 50052 50053 9090
ENTRYPOINT ["bytereview"]
CMD ["--help"]

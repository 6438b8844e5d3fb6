# One image for the API (`tandem api`) and the worker (`tandem worker`).
#   docker build -f docker/backend.Dockerfile -t tandem-backend .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that a source change does
# not reinstall them: install the project with empty packages, then drop it.
COPY pyproject.toml README.md constraints.txt ./
RUN mkdir -p backend worker \
    && touch backend/__init__.py worker/__init__.py \
    && pip install -c constraints.txt . \
    && pip uninstall -y tandem \
    && rm -rf backend worker build *.egg-info

COPY backend ./backend
COPY worker ./worker
RUN pip install --no-deps . && rm -rf build *.egg-info

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin tandem
USER tandem

EXPOSE 8000
CMD ["tandem", "api", "--host", "0.0.0.0", "--port", "8000"]

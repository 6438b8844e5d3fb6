# The SPA, built with Node and served by Nginx with the config of nginx/.
#   docker build -f docker/frontend.Dockerfile -t tandem-frontend .
FROM node:20-bookworm-slim AS build
WORKDIR /app/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM nginx:1.27-alpine
# The image's entrypoint renders /etc/nginx/templates/*.template with envsubst
# (only variables that are set) into NGINX_ENVSUBST_OUTPUT_DIR. Every placeholder of the
# template has a default here; MAX_BODY_BYTES must equal the API's (Compose passes both).
ENV NGINX_ENVSUBST_OUTPUT_DIR=/etc/nginx \
    NGINX_PORT=8080 \
    API_UPSTREAM=api:8000 \
    NGINX_RESOLVER="127.0.0.11 valid=10s" \
    SPA_ROOT=/usr/share/nginx/html \
    ACCESS_LOG="/dev/stdout tandem" \
    NGINX_WORKER_CONNECTIONS=4096 \
    MAX_BODY_BYTES=1048576 \
    CSP_CONNECT_EXTRA="https://*.supabase.co wss://*.supabase.co"
RUN rm -f /etc/nginx/conf.d/default.conf /etc/nginx/nginx.conf \
    && mkdir -p /etc/nginx/templates /etc/nginx/tmp \
    && rm -rf /usr/share/nginx/html/*
COPY nginx/nginx.conf.template /etc/nginx/templates/nginx.conf.template
COPY --from=build /app/frontend/dist /usr/share/nginx/html
EXPOSE 8080
# `daemon off;` is in the config itself.
CMD ["nginx"]

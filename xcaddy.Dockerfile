# Caddy with the ssegate module, built with xcaddy on the official images,
# with docker/Caddyfile and the demo page.
#
#   docker build -f xcaddy.Dockerfile -t caddy-ssegate .
#   export SSEGATE_JWT_SECRET=$(openssl rand -hex 32) SSEGATE_NATS_PASSWORD=$(openssl rand -hex 16)
#   docker run -p 8080:80 -p 4222:4222 -v ssegate_data:/data \
#     -e SSEGATE_JWT_SECRET -e SSEGATE_NATS_PASSWORD caddy-ssegate
#
# Ports: 80 (the page and /events; add -p 443:443 -p 443:443/udp and
# -e SSEGATE_SITE=<domain> for HTTPS), 4222 (NATS, user "backend" with
# SSEGATE_NATS_PASSWORD, may publish to events.>). Events are stored under
# /data: keep it on a volume. Mount your own Caddyfile over
# /etc/caddy/Caddyfile to change any of it.
ARG CADDY_VERSION=2.11.9

FROM caddy:${CADDY_VERSION}-builder AS builder
WORKDIR /src/ssegate
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN xcaddy build --output /usr/bin/caddy --with github.com/ssegate/ssegate=/src/ssegate

FROM caddy:${CADDY_VERSION}
COPY --from=builder /usr/bin/caddy /usr/bin/caddy
COPY docker/Caddyfile /etc/caddy/Caddyfile
COPY demo /srv/ssegate/demo
EXPOSE 4222

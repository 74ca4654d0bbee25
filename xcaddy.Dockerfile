# Caddy with the ssegate module, built with xcaddy on the official images.
#
#   docker build -f xcaddy.Dockerfile -t caddy-ssegate .
#   docker run -p 80:80 -p 443:443 -v $PWD/Caddyfile:/etc/caddy/Caddyfile -v caddy_data:/data caddy-ssegate
#
# The embedded NATS server keeps its events under /data (Caddy's data
# directory in these images), so keep /data on a volume.
ARG CADDY_VERSION=2.11.9

FROM caddy:${CADDY_VERSION}-builder AS builder
WORKDIR /src/ssegate
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN xcaddy build --output /usr/bin/caddy --with github.com/ssegate/ssegate=/src/ssegate

FROM caddy:${CADDY_VERSION}
COPY --from=builder /usr/bin/caddy /usr/bin/caddy

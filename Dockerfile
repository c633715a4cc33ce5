# Builds both services into one small image; pick the binary with the command.
#   docker build -t colmena .
#   docker run colmena colmena-central --listen 0.0.0.0:8000 --admin-token ...
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p colmena-central -p colmena-sucursal \
 && cp target/release/colmena-central target/release/colmena-sucursal /usr/local/bin/

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home /var/lib/colmena colmena \
 && mkdir -p /var/lib/colmena && chown colmena:colmena /var/lib/colmena
COPY --from=build /usr/local/bin/colmena-central /usr/local/bin/colmena-sucursal /usr/local/bin/
USER colmena
WORKDIR /var/lib/colmena
VOLUME ["/var/lib/colmena"]
# SIGTERM is the graceful stop of both services.
STOPSIGNAL SIGTERM
CMD ["colmena-central", "--listen", "0.0.0.0:8000"]

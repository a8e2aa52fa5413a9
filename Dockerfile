# Sluice broker image: sluiced, the `sluice` CLI and the example programs.
#   docker build -t sluice .
#   docker run -p 127.0.0.1:7400:7400 -v sluice-data:/var/lib/sluice \
#     -e SLUICE_ADMIN_TOKEN="$(openssl rand -hex 32)" sluice
# The broker listens on 0.0.0.0 inside the container; publish the port to the host as needed.

# ---- build stage: full toolchain, Release build, no tests ----
FROM debian:12 AS build
WORKDIR /src
# Dependencies first, so this layer is cached until the script changes.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh --build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build \
      -DCMAKE_BUILD_TYPE=Release \
      -DSLUICE_BUILD_TESTS=OFF \
      -DSLUICE_BUILD_EXAMPLES=ON \
      -DSLUICE_WERROR=OFF \
      -DSLUICE_SANITIZE=OFF \
 && cmake --build /build -j"$(nproc)" \
 && install -d /out \
 && install -m 0755 -s /build/broker/src/sluiced /build/client-lib/cli/sluice /out/ \
 && install -m 0755 -s /build/examples/sluice-example-* /out/

# ---- runtime stage: shared libraries only ----
FROM debian:12
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcapnp-0.9.2 liblmdb0 libspdlog1.10 libfmt9 libtomlplusplus3 libhttp-parser2.9 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --uid 10001 --home-dir /var/lib/sluice \
      --shell /usr/sbin/nologin sluice \
 && install -d -o sluice -g sluice -m 0750 /var/lib/sluice
COPY --from=build /out/ /usr/local/bin/
# Fail the image build, not the first start, if a shared library is missing.
RUN ! ldd /usr/local/bin/sluiced /usr/local/bin/sluice /usr/local/bin/sluice-example-* \
      | grep 'not found'

USER sluice
WORKDIR /var/lib/sluice
VOLUME /var/lib/sluice
# 7400: Cap'n Proto RPC. 7401: admin HTTP (/metrics, /healthz, /readyz, the HTTP API and the
# console at /ui/).
EXPOSE 7400 7401
# SIGTERM drains in-flight work and closes the store cleanly; give it time before SIGKILL
# (docker stop -t 30, or stop_grace_period in compose).
STOPSIGNAL SIGTERM
# Healthy means /healthz answers 200: the process serves and no commit has failed (503 with
# the reason otherwise). The admin endpoint listens on 0.0.0.0:7401 (CMD below), so
# 127.0.0.1 reaches it; bash's /dev/tcp stands in for an HTTP client the image lacks.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/7401 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r -t 4 status <&3 && [[ $status == *' 200 '* ]]"]
# --auth: 0.0.0.0 is not loopback, so clients authenticate and each call is checked against
# their principal's rules (README "Security"). The first admin token comes from
# SLUICE_ADMIN_TOKEN (32+ characters, e.g. `openssl rand -hex 32`) or the file named by
# SLUICE_ADMIN_TOKEN_FILE (a Docker secret); on a store without principals the broker refuses to
# start without one.
CMD ["sluiced", "--data", "/var/lib/sluice", "--listen", "0.0.0.0:7400", "--admin", "0.0.0.0:7401", \
     "--auth"]

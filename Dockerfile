# The herd image: one static binary on scratch, run as nobody. Two ways to
# build it, to the same image:
#
# With a registry (the golang image is pulled), from source, in one step:
#
#   docker compose up --build           (or: docker build --target source -t herd:local .)
#
# Without a registry (the machines this project is built on): compile on
# the host and build the last stage, "prebuilt", around the binary:
#
#   docker/build-image                  (= go build + docker build of the "prebuilt" stage)
#
# docker/build-image and the end-to-end tests give Docker only the lines
# from "FROM scratch AS prebuilt" on, with a context that holds only the
# binary, named herd, and an empty directory named data (the journal's
# home, owned by the user that runs the server). The classic builder (no
# BuildKit) builds every stage before its target, so "prebuilt" must need
# nothing above it; and since it comes last, a build of "source" never
# builds it, with either builder.
#
# Both builds stamp the version and revision (herd version,
# herd_build_info, the OCI labels) through -ldflags, since Go's own VCS
# stamping sees no .git here. Keep the two runtime stages alike:
# test/dockerfile_test.go checks that they differ only in their COPY lines.

# Without a registry the next stage cannot pull its image, and the build
# stops right after printing this stage's name: run docker/build-image first.
FROM scratch AS no-registry-run-docker-build-image-first

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=(devel)
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/herdkit/herd/pkg/metrics.Version=${VERSION} -X github.com/herdkit/herd/pkg/metrics.Revision=${REVISION}" -o /out/herd ./services/herd && mkdir /out/data

FROM scratch AS source
COPY --from=build /out/herd /herd
COPY --from=build --chown=65534:65534 /out/data /data
ARG VERSION=(devel)
ARG REVISION=unknown
LABEL org.opencontainers.image.title="herd" \
      org.opencontainers.image.description="A server herd: location records flooded between TCP servers" \
      org.opencontainers.image.source="https://github.com/herdkit/herd" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="NOASSERTION AND CC-BY-4.0"
USER 65534:65534
ENV HERD_CLIENT_ADDR=:12200 HERD_PEER_ADDR=:12300 HERD_METRICS_ADDR=:9100
EXPOSE 12200 12300 9100
HEALTHCHECK --interval=10s --timeout=2s --start-period=10s --retries=3 CMD ["/herd", "health"]
ENTRYPOINT ["/herd"]
CMD ["serve"]

FROM scratch AS prebuilt
COPY herd /herd
COPY --chown=65534:65534 data /data
ARG VERSION=(devel)
ARG REVISION=unknown
LABEL org.opencontainers.image.title="herd" \
      org.opencontainers.image.description="A server herd: location records flooded between TCP servers" \
      org.opencontainers.image.source="https://github.com/herdkit/herd" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="NOASSERTION AND CC-BY-4.0"
USER 65534:65534
ENV HERD_CLIENT_ADDR=:12200 HERD_PEER_ADDR=:12300 HERD_METRICS_ADDR=:9100
EXPOSE 12200 12300 9100
HEALTHCHECK --interval=10s --timeout=2s --start-period=10s --retries=3 CMD ["/herd", "health"]
ENTRYPOINT ["/herd"]
CMD ["serve"]

# The herd image: one static binary on scratch, run as nobody.
#
# No registry is needed (the usual case on the machines this project is
# built on): compile on the host and build the "prebuilt" stage around the
# binary, with a context that holds only the binary, named herd, and an
# empty directory named data (the journal's home, owned by the user that
# runs the server):
#
#   docker/build-image            # = go build + docker build --target prebuilt
#
# With a registry and BuildKit, build from source in one step instead:
#
#   docker build --target source -t herd:local .
#
# The classic builder (no BuildKit) builds every stage before its target,
# so "prebuilt" comes first and needs nothing but the binary.

FROM scratch AS prebuilt
COPY herd /herd
COPY --chown=65534:65534 data /data
USER 65534:65534
ENV HERD_CLIENT_ADDR=:12200 HERD_PEER_ADDR=:12300 HERD_METRICS_ADDR=:9100
EXPOSE 12200 12300 9100
HEALTHCHECK --interval=2s --timeout=2s --start-period=10s --retries=3 CMD ["/herd", "health"]
ENTRYPOINT ["/herd"]
CMD ["serve"]

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/herd ./services/herd && mkdir /out/data

FROM scratch AS source
COPY --from=build /out/herd /herd
COPY --from=build --chown=65534:65534 /out/data /data
USER 65534:65534
ENV HERD_CLIENT_ADDR=:12200 HERD_PEER_ADDR=:12300 HERD_METRICS_ADDR=:9100
EXPOSE 12200 12300 9100
HEALTHCHECK --interval=2s --timeout=2s --start-period=10s --retries=3 CMD ["/herd", "health"]
ENTRYPOINT ["/herd"]
CMD ["serve"]

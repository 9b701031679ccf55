# syntax=docker/dockerfile:1
#
# engram in a container: a static binary on a distroless image that has
# python3 (custom tools run in it), running as a non-root user, with the
# event log and indexes in the volume /data.
#
#   docker build -t engram --build-arg VERSION=$(git describe --always) .
#   docker run -d --name engram -p 127.0.0.1:8283:8283 -v engram-data:/data \
#     -e ENGRAM_TOKEN=change-me -e OPENAI_API_KEY engram
#
# The server listens on all of the container's interfaces, so it requires a
# token (ENGRAM_TOKEN). TestDockerfile (dockerfile_test.go) runs the build
# stage's go build command and checks the rest of this file.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/engram ./cmd/engram
# The volume's mount point, owned by the runtime user (distroless has no shell to make it).
RUN mkdir -p /out/data

FROM gcr.io/distroless/python3-debian12:nonroot
COPY --from=build /out/engram /usr/local/bin/engram
COPY --from=build --chown=65532:65532 /out/data /data
ENV ENGRAM_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8283 4222
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/engram"]
CMD ["server", "--http-addr", "0.0.0.0:8283", "--nats-addr", "0.0.0.0:4222"]

# Build: docker build -t dobrobot .
# Run:   docker run -v dobrobot-data:/data -v ./dobrobot.yaml:/etc/dobrobot.yaml:ro \
#          -e SLACK_APP_TOKEN -e SLACK_BOT_TOKEN -e JIRA_TOKEN dobrobot
# One container per Slack app and database: the bbolt file allows one process.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.Version=${VERSION}" -o /out/dobrobot ./cmd/dobrobot

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dobrobot /usr/local/bin/dobrobot
# storage.path in the config should point into /data (e.g. /data/dobrobot.db).
VOLUME ["/data"]
WORKDIR /data
USER nonroot:nonroot
ENV DOBROBOT_CONFIG=/etc/dobrobot.yaml
ENTRYPOINT ["/usr/local/bin/dobrobot"]
CMD ["run"]

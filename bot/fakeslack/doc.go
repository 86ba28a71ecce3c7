// Package fakeslack is a Slack for tests: an httptest server on 127.0.0.1 that
// speaks Socket Mode over a real websocket and answers the Web API methods
// dobrobot uses, recording everything.
//
// What it does, like Slack:
//
//   - apps.connections.open checks the app-level token and returns a
//     single-use ws:// URL of its own websocket endpoint.
//   - Each socket gets a hello (with num_connections), then websocket pings
//     (which a test can withhold), and reads acks, recording each with its
//     envelope ID and time.
//   - Send pushes an envelope to one open socket chosen at random, as Slack
//     does when an app has several connections. Disconnect sends a disconnect
//     message (warning, refresh_requested, link_disabled) to every socket and
//     then closes them; Refresh does it to the oldest socket only, as Slack
//     refreshes each connection on its own. A socket that was sent a
//     disconnect gets no more envelopes, unless RouteToDraining (the worst
//     case) is on. DropNextAcks loses acks with the socket they came on.
//   - Redeliver re-sends an envelope with a new envelope ID and the next
//     retry_attempt; SetRetries makes the server redeliver unacked Events API
//     envelopes on its own, on a time-compressed version of Slack's schedule.
//   - The Web API (auth.test, chat.postMessage, chat.update,
//     chat.postEphemeral, conversations.open, conversations.history,
//     conversations.replies, usergroups.users.list, users.info, and the
//     methods below) checks the
//     bot token, answers realistic JSON with increasing ts values, keeps the
//     messages it was sent (with updates applied, and the metadata
//     chat.postMessage carried, which the two read methods return with
//     include_all_metadata), and fails on demand (Fail: 429 with
//     Retry-After, 5xx, ok:false errors).
//   - Slash commands (SlashEnvelope) and the interactions of a modal
//     (ViewSubmissionEnvelope, BlockSuggestionEnvelope) must be acked
//     within 3 s, and their ack may carry a payload (a response, a
//     response_action, the options), which the fake checks as Slack reads
//     it and a test reads back with AckPayload; an ack after 3 s is Late.
//     views.open takes a trigger_id once, within 3 s of the command or
//     click that issued it (expired_trigger_id after), and views.publish
//     replaces a user's App Home (Views, Home, Publishes). The 3 s windows
//     follow the fake's own clock, which tests move (SetClock, Advance).
//   - Files upload v2: files.getUploadURLExternal gives an upload URL on
//     the fake, the POST to it carries the bytes (checked against the
//     announced length, hashed, kept unless KeepUploadBytes(false)), and
//     files.completeUploadExternal shares the file into a channel
//     (Uploads).
//
// Point slack-go at it with slack.OptionAPIURL(server.URL) and
// slack.OptionAppLevelToken(fakeslack.AppToken). slack-go's own slacktest
// package does not speak Socket Mode, which is why this one exists.
package fakeslack

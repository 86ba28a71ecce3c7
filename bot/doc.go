// Package bot holds the chat adapters: the Slack Socket Mode bot and the
// terminal console. Both turn what a person writes into a commands.Message,
// hand it to the commands.Service, and deliver the effects the Service left
// in the Store's outbox.
package bot

// Package fakejira is a Jira for tests: an httptest server on 127.0.0.1
// answering the parts of Jira's REST API v2 that dobrobot uses with the JSON
// real Jira sends.
//
//	GET  /rest/api/2/issue/{key}          the issue; fields= selects fields
//	POST /rest/api/2/issue/{key}/comment  adds a comment (recorded)
//	GET  /rest/api/2/myself               the bot's own account
//	GET  /rest/api/2/search               issues a small JQL selects (getSearch), maxResults, fields=
//
// A new Server holds the issues of Fixtures. Tests add or replace issues
// with AddIssue, make Jira fail for one key or for every request (searches
// included: they have no key) with Fail
// (404, 401, 403, 429 or 503 with Retry-After, any status, a delay, or a
// hang until the client gives up or the server closes), check credentials
// with SetCredentials, and read back every request with Requests: method,
// path, query, and the kind of authentication with its user — never the
// secret.
package fakejira

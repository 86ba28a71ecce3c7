package postgres

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrations[i] brings a schema from version i to i+1 (0: an empty schema).
// {s} stands for the quoted schema name. Append, never edit.
var migrations = []string{
	// 1: the first layout.
	`
CREATE TABLE {s}.meta (
	key   text COLLATE "C" PRIMARY KEY,
	value text NOT NULL
);

CREATE TABLE {s}.leader (
	id     int PRIMARY KEY CHECK (id = 1),
	epoch  bigint NOT NULL,
	holder text NOT NULL,
	since  timestamptz NOT NULL
);
INSERT INTO {s}.leader (id, epoch, holder, since) VALUES (1, 0, '', now());

CREATE TABLE {s}.terms (
	epoch   bigint PRIMARY KEY,
	holder  text NOT NULL,
	started timestamptz NOT NULL
);

CREATE SEQUENCE {s}.release_id;
CREATE TABLE {s}.releases (
	id      bigint PRIMARY KEY,
	ticket  text COLLATE "C" NOT NULL,
	open    boolean NOT NULL,
	version bigint NOT NULL,
	data    json NOT NULL
);
CREATE INDEX releases_ticket ON {s}.releases (ticket, id);
CREATE INDEX releases_open ON {s}.releases (id) WHERE open;

CREATE TABLE {s}.locks (
	component text COLLATE "C" NOT NULL,
	release   bigint NOT NULL,
	data      json NOT NULL,
	PRIMARY KEY (component, release)
);

CREATE TABLE {s}.audit (
	seq        bigint PRIMARY KEY,
	time       text NOT NULL,
	at         timestamptz NOT NULL,
	actor      text NOT NULL,
	action     text NOT NULL,
	ticket     text COLLATE "C" NOT NULL,
	from_state text NOT NULL,
	to_state   text NOT NULL,
	detail     text NOT NULL,
	prev_hash  text NOT NULL,
	hash       text NOT NULL,
	epoch      bigint NOT NULL
);
CREATE INDEX audit_ticket ON {s}.audit (ticket, seq);
CREATE INDEX audit_at ON {s}.audit (at);
CREATE FUNCTION {s}.audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'the dobrobot audit log is append-only: % is refused', TG_OP
		USING HINT = 'Entries are never changed or removed; export them with dobrobot audit export.';
END
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {s}.audit
	FOR EACH ROW EXECUTE FUNCTION {s}.audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {s}.audit
	FOR EACH STATEMENT EXECUTE FUNCTION {s}.audit_append_only();

CREATE TABLE {s}.inbox (
	id         text COLLATE "C" PRIMARY KEY,
	received_s bigint NOT NULL,
	received_n int NOT NULL,
	processed  boolean NOT NULL,
	data       json NOT NULL
);
CREATE INDEX inbox_pending ON {s}.inbox (received_s, received_n, id) WHERE NOT processed;
CREATE INDEX inbox_processed ON {s}.inbox (received_s, received_n, id) WHERE processed;

CREATE SEQUENCE {s}.outbox_id;
CREATE TABLE {s}.outbox (
	id    bigint PRIMARY KEY,
	epoch bigint NOT NULL,
	data  json NOT NULL
);
`,
	// 2: where each audit entry came from (commands.AuditEntry.Via). Rows
	// written before have '' and hash as they always did. A constant default
	// adds the column without rewriting a row, so the append-only trigger
	// is not involved.
	`
ALTER TABLE {s}.audit ADD COLUMN via text NOT NULL DEFAULT '';
`,
	// 3: the environment and the version of the release an audit entry is
	// about (commands.AuditEntry.Env, .Version); '' on rows written before,
	// which hash as they always did.
	`
ALTER TABLE {s}.audit ADD COLUMN env text NOT NULL DEFAULT '';
ALTER TABLE {s}.audit ADD COLUMN version text NOT NULL DEFAULT '';
`,
	// 4: environments (issue 14). A freeze is keyed by (component, env):
	// env is the freeze's environment, '' for one that holds every
	// environment and for a release's lock, whose key (component, release)
	// is unique already and whose environment is in its data. Every row
	// written before is a freeze of every environment or a release's lock,
	// so '' is right for all of them and nothing is backfilled. deployed is
	// what is where, one row per (env, component), written when a release
	// is marked done; it starts empty.
	`
ALTER TABLE {s}.locks ADD COLUMN env text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE {s}.locks DROP CONSTRAINT locks_pkey;
ALTER TABLE {s}.locks ADD PRIMARY KEY (component, release, env);

CREATE TABLE {s}.deployed (
	env       text COLLATE "C" NOT NULL,
	component text COLLATE "C" NOT NULL,
	data      json NOT NULL,
	PRIMARY KEY (env, component)
);
`,
	// 5: the scheduler's due times (issue 16), see due.go.
	migrateDue,
}

// auditColumns are the audit table's columns that scanAudit reads, in its
// order: every query whose rows it scans selects exactly these.
const auditColumns = `seq, time, actor, action, ticket, from_state, to_state, detail, prev_hash, hash, via, env, version`

// queries holds the store's SQL with the schema filled in.
type queries struct {
	schema string // quoted

	schemaVersion, setVersion string
	lockLeader, leaderEpoch   string
	bumpEpoch, recordTerm     string
	term                      string

	release, releaseForUpdate, openReleases, lastRelease string
	open, releases, recent                               string
	nextRelease, insertRelease, updateRelease            string

	locks, putLock, deleteLock string
	deployed, putDeployed      string

	auditHead, appendAudit, audit string

	event, putEvent, recordEvent, pendingEvents, pruneEvents string

	nextEffect, emit, pending, pendingAfter, delivered string
}

func newQueries(schema string) queries {
	q := queries{schema: pgx.Identifier{schema}.Sanitize()}
	x := q.expand
	q.schemaVersion = x(`SELECT value FROM {s}.meta WHERE key = 'schema'`)
	q.setVersion = x(`INSERT INTO {s}.meta (key, value) VALUES ('schema', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`)
	q.lockLeader = x(`SELECT epoch FROM {s}.leader WHERE id = 1 FOR UPDATE`)
	q.leaderEpoch = x(`SELECT epoch FROM {s}.leader WHERE id = 1`)
	q.bumpEpoch = x(`UPDATE {s}.leader SET epoch = epoch + 1, holder = $1, since = now() WHERE id = 1 RETURNING epoch`)
	q.recordTerm = x(`INSERT INTO {s}.terms (epoch, holder, started) VALUES ($1, $2, now())`)
	q.term = x(`SELECT epoch, holder, since, EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1 AND granted)
		FROM {s}.leader WHERE id = 1`)

	q.release = x(`SELECT data FROM {s}.releases WHERE id = $1`)
	q.releaseForUpdate = x(`SELECT ticket, version FROM {s}.releases WHERE id = $1 FOR UPDATE`)
	q.openReleases = x(`SELECT data FROM {s}.releases WHERE ticket = $1 AND open ORDER BY id`)
	q.lastRelease = x(`SELECT data FROM {s}.releases WHERE ticket = $1 ORDER BY id DESC LIMIT 1`)
	q.open = x(`SELECT data FROM {s}.releases WHERE open ORDER BY id`)
	q.releases = x(`SELECT data FROM {s}.releases WHERE ticket = $1 ORDER BY id DESC LIMIT $2`)
	q.recent = x(`SELECT data FROM {s}.releases ORDER BY id DESC LIMIT $1`)
	q.nextRelease = x(`SELECT nextval('{s}.release_id')`)
	q.insertRelease = x(`INSERT INTO {s}.releases (id, ticket, open, version, data) VALUES ($1, $2, $3, $4, $5)`)
	q.updateRelease = x(`UPDATE {s}.releases SET ticket = $2, open = $3, version = $4, data = $5 WHERE id = $1`)

	q.locks = x(`SELECT data FROM {s}.locks ORDER BY component, release, env`)
	q.putLock = x(`INSERT INTO {s}.locks (component, release, env, data) VALUES ($1, $2, $3, $4)
		ON CONFLICT (component, release, env) DO UPDATE SET data = excluded.data`)
	q.deleteLock = x(`DELETE FROM {s}.locks WHERE component = $1 AND release = $2 AND env = $3`)
	q.deployed = x(`SELECT data FROM {s}.deployed ORDER BY env, component`)
	q.putDeployed = x(`INSERT INTO {s}.deployed (env, component, data) VALUES ($1, $2, $3)
		ON CONFLICT (env, component) DO UPDATE SET data = excluded.data`)

	q.auditHead = x(`SELECT seq, hash FROM {s}.audit ORDER BY seq DESC LIMIT 1`)
	q.appendAudit = x(`INSERT INTO {s}.audit (seq, time, at, actor, action, ticket, from_state, to_state, detail, prev_hash, hash, epoch, via, env, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`)
	q.audit = x(`SELECT ` + auditColumns + ` FROM {s}.audit
		WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at <= $2) AND ($3::text IS NULL OR ticket = $3)
		ORDER BY seq`)

	q.event = x(`SELECT data FROM {s}.inbox WHERE id = $1`)
	q.putEvent = x(`INSERT INTO {s}.inbox (id, received_s, received_n, processed, data) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET received_s = excluded.received_s, received_n = excluded.received_n,
		processed = excluded.processed, data = excluded.data`)
	q.recordEvent = x(`INSERT INTO {s}.inbox (id, received_s, received_n, processed, data) VALUES ($1, $2, $3, false, $4)
		ON CONFLICT (id) DO NOTHING`)
	q.pendingEvents = x(`SELECT data FROM {s}.inbox WHERE NOT processed ORDER BY received_s, received_n, id`)
	q.pruneEvents = x(`DELETE FROM {s}.inbox WHERE processed AND (received_s, received_n) < ($1, $2)`)

	q.nextEffect = x(`SELECT nextval('{s}.outbox_id')`)
	q.emit = x(`INSERT INTO {s}.outbox (id, epoch, data) VALUES ($1, $2, $3)`)
	q.pending = x(`SELECT id, data FROM {s}.outbox ORDER BY id LIMIT $1`)
	q.pendingAfter = x(`SELECT id, data FROM {s}.outbox WHERE id > $1 ORDER BY id LIMIT $2`)
	q.delivered = x(`DELETE FROM {s}.outbox WHERE id = ANY($1)`)
	return q
}

// expand fills the quoted schema name into sql.
func (q queries) expand(sql string) string { return strings.ReplaceAll(sql, "{s}", q.schema) }

/**
 * Schema migrations of the SQLite store, applied in order; `PRAGMA user_version` records
 * how many ran. Never edit a released migration: append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    deliveries INTEGER NOT NULL DEFAULT 1,
    received_at TEXT NOT NULL,
    last_received_at TEXT NOT NULL,
    source TEXT NOT NULL,
    host TEXT,
    alertname TEXT NOT NULL,
    status TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    generator_url TEXT NOT NULL,
    group_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    disposition TEXT NOT NULL,
    recovery_id TEXT,
    note TEXT
  );
  CREATE INDEX events_unprocessed ON events(id) WHERE disposition = 'unprocessed';
  CREATE INDEX events_host ON events(host, id);
  CREATE INDEX events_recovery ON events(recovery_id);

  CREATE TABLE recoveries (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    incident_key TEXT NOT NULL,
    state TEXT NOT NULL,
    trigger TEXT NOT NULL,
    dry_run INTEGER NOT NULL,
    confirmed_off INTEGER NOT NULL,
    approved INTEGER NOT NULL,
    approved_by TEXT,
    outcome TEXT,
    fence_state TEXT NOT NULL,
    reason TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    grace_until TEXT NOT NULL,
    alerts TEXT NOT NULL,
    facts TEXT NOT NULL
  );
  -- The invariant "one open recovery per host", enforced by the database itself.
  CREATE UNIQUE INDEX recoveries_one_open_per_host ON recoveries(host)
    WHERE state NOT IN ('completed', 'partial', 'failed', 'aborted');
  CREATE INDEX recoveries_incident ON recoveries(host, incident_key);
  CREATE INDEX recoveries_created ON recoveries(created_at);

  CREATE TABLE transitions (
    recovery_id TEXT NOT NULL REFERENCES recoveries(id),
    seq INTEGER NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT,
    PRIMARY KEY (recovery_id, seq)
  );

  CREATE TABLE decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recovery_id TEXT NOT NULL REFERENCES recoveries(id),
    gate TEXT NOT NULL,
    result TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    details TEXT
  );
  CREATE INDEX decisions_recovery ON decisions(recovery_id, id);

  CREATE TABLE steps (
    recovery_id TEXT NOT NULL REFERENCES recoveries(id),
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    result TEXT,
    error TEXT,
    PRIMARY KEY (recovery_id, key)
  );

  CREATE TABLE instances (
    recovery_id TEXT NOT NULL REFERENCES recoveries(id),
    instance_id TEXT NOT NULL,
    name TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id TEXT,
    original_status TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL,
    target_host TEXT,
    attempts INTEGER NOT NULL,
    error TEXT,
    note TEXT,
    started_at TEXT,
    finished_at TEXT,
    PRIMARY KEY (recovery_id, instance_id)
  );

  CREATE TABLE notifications (
    recovery_id TEXT NOT NULL REFERENCES recoveries(id),
    dedup_key TEXT NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT,
    sent_at TEXT,
    project_id TEXT,
    PRIMARY KEY (recovery_id, dedup_key)
  );
  CREATE INDEX notifications_dedup ON notifications(dedup_key);

  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  `,
  // 2: each instance's latest evacuate call (JSON of InstanceResult.evacuateCall), journaled
  // around the POST so that a restart knows a call that may have been sent.
  `
  ALTER TABLE instances ADD COLUMN evacuate_call TEXT;
  `,
  // 3: notifications are delivered in the background: what to send is kept with a pending
  // record (payload, dropped once it leaves pending), with its Message-ID and its schedule.
  `
  ALTER TABLE notifications ADD COLUMN message_id TEXT;
  ALTER TABLE notifications ADD COLUMN queued_at TEXT;
  ALTER TABLE notifications ADD COLUMN next_attempt_at TEXT;
  ALTER TABLE notifications ADD COLUMN payload TEXT;
  CREATE INDEX notifications_pending ON notifications(next_attempt_at) WHERE state = 'pending' AND payload IS NOT NULL;
  -- Left pending by a crash of an earlier lifeboat in a recovery that has ended since: never resent.
  UPDATE notifications SET state = 'failed', error = 'interrupted in an earlier version of lifeboat; not sent again'
    WHERE state = 'pending' AND recovery_id IN (SELECT id FROM recoveries WHERE state IN ('completed', 'partial', 'failed', 'aborted'));
  `,
  // 4: a recovery's kind (alert, manual, fence-only, release). Older rows: a power-off by hand
  // was marked in its facts, an operator's recovery by its trigger.
  `
  ALTER TABLE recoveries ADD COLUMN kind TEXT;
  UPDATE recoveries SET kind = CASE
    WHEN json_extract(facts, '$.fenceOnly') = 1 THEN 'fence-only'
    WHEN trigger = 'manual' THEN 'manual'
    ELSE 'alert' END;
  `,
  // 5: what lifeboat holds about a host moves from the settings \`host/<name>\` to a record per
  // host, written by compare-and-swap on its version. (The old \`release/<name>\` settings stay
  // for the record: a release is now a recovery of its own.)
  `
  CREATE TABLE hosts (
    host TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL
  );
  INSERT INTO hosts(host, doc, version, updated_at)
    SELECT substr(key, 6), json_set(value, '$.host', substr(key, 6)), 1, updated_at FROM settings WHERE key LIKE 'host/%';
  DELETE FROM settings WHERE key LIKE 'host/%';
  `,
  // 6: an instance an older lifeboat left \`evacuating\` in an open recovery, journaled before
  // evacuate calls were: its call may have been sent. It is treated as one with no answer
  // (Nova's records decide once nova-api could no longer act on it), never simply sent again.
  `
  UPDATE instances SET evacuate_call = json_object('attempt', attempts, 'sentAt', COALESCE(started_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), 'migrationsBefore', json('[]'))
    WHERE state = 'evacuating' AND evacuate_call IS NULL
      AND recovery_id IN (SELECT id FROM recoveries WHERE state NOT IN ('completed', 'partial', 'failed', 'aborted'));
  `,
];

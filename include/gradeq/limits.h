/* The numbers gradeq holds fixed, in one place, each with the reason for
 * its value. Settings a site may want to change are in the configuration
 * (config.c); these are not, because changing them changes behaviour that
 * other parts (tests, the topology on the broker, a running fleet) rely on. */
#ifndef GRADEQ_LIMITS_H
#define GRADEQ_LIMITS_H

/* PostgreSQL advisory lock held while migrations run, so that two
 * gradeq-admin migrate never interleave. Any number no other application on
 * the database locks; it must never change, or an old and a new
 * gradeq-admin could migrate at the same time. */
#define GRADEQ_MIGRATION_LOCK_KEY 7365

/* A constant's digits for SQL text: GRADEQ_STR(GRADEQ_MIGRATION_LOCK_KEY). */
#define GRADEQ_STR_(x) #x
#define GRADEQ_STR(x) GRADEQ_STR_(x)

/* Publisher confirms in flight on the connection that republishes failed
 * jobs to a retry tier or the dead queue (consumer, replay). Each republish
 * is confirmed before its original is acked, so the window only has to
 * cover a prefetch's worth of failures at once. */
#define GRADEQ_REPUBLISH_CONFIRM_WINDOW 16

/* Confirms in flight when gradeq-admin moves messages between queues
 * (release drain and retire): bulk copies whose originals are acked per
 * confirmed batch; 64 amortises the round trips, and at most that many are
 * sent twice after a lost connection. */
#define GRADEQ_MOVE_CONFIRM_WINDOW 64

/* Waits of rabbitmq-c calls. An RPC or a confirm that takes longer leaves
 * the connection in an unknown state and it is rebuilt: 30 s is far above
 * what a healthy broker needs (milliseconds, a second or two while a quorum
 * queue elects a leader) and well inside the 60 s heartbeat. */
#define GRADEQ_RPC_TIMEOUT_S 30
#define GRADEQ_CONFIRM_WAIT_MS 30000
/* TCP and TLS connect: a broker that does not accept within 10 s is down
 * for our purposes; the caller's backoff retries. */
#define GRADEQ_CONNECT_TIMEOUT_S 10

/* How long a PostgreSQL connection may take to open, SCRAM authentication
 * included, unless the DSN sets connect_timeout itself. 10 s was seen to
 * run out on a loopback server with the client under valgrind on a loaded
 * machine; a server that cannot answer in 30 s is not going to. */
#define GRADEQ_DB_CONNECT_TIMEOUT_S 30

/* gradeq-publish waits this long for the last confirms of a backfill: up
 * to confirm_window (256) messages written to quorum queues on a loaded
 * node, twice the per-call wait. */
#define GRADEQ_PUBLISH_CONFIRM_WAIT_MS 60000

/* How long gradeq-publish tries to reach a node again after losing its
 * connection in the middle of a run before it gives up (and records the
 * run failed): another node of a cluster takes it at once, a quorum
 * queue elects a new leader within seconds, a single broker restarts in
 * well under a minute on a loaded machine. */
#define GRADEQ_PUBLISH_FAILOVER_MS 120000

/* Frames read at most by one gradeq_broker_service() call on an idle
 * publishing connection: a second of confirms and heartbeats is a handful;
 * the bound keeps a flood from holding the consume loop. */
#define GRADEQ_SERVICE_MAX_FRAMES 64

/* Attempts of a dead-letter or retry-tier republish before the consumer
 * gives the delivery back (it reconnects; the broker redelivers it): with
 * the backoff below, about 15 s of reconnects, re-declares and retries,
 * enough for a broker restart or a deleted queue, short enough that the
 * delivery is not held while the connection is rebuilt. */
#define GRADEQ_REPUBLISH_TRIES 6

/* Reconnect backoff: the first attempt after a loss is immediate (on the
 * next node of amqp_url), then from 0.25 s (a restarting server or a
 * quorum queue electing a leader is back within a second or two) doubling
 * to reconnect_max_ms (a setting, 5 s by default: an outage costs at most
 * that much more once the broker is back, and a fleet does not hammer a
 * recovering server). */
#define GRADEQ_BACKOFF_FIRST_MS 250

/* Nodes in amqp_url or management_url: a RabbitMQ cluster has an odd
 * number of nodes, rarely more than 7; 16 leaves room without letting a
 * malformed list grow without bound. */
#define GRADEQ_URLS_MAX 16

/* TCP connect and AMQP handshake bound per node when amqp_url names
 * several: a node that is down refuses at once, a blackholed or frozen
 * one must not hold the failover longer than this before the next node
 * is tried (a loaded loopback broker answers a handshake in milliseconds;
 * TLS under valgrind in well under a second). */
#define GRADEQ_FAILOVER_CONNECT_TIMEOUT_S 2

/* A job in_progress longer than this is not counted as held by a live
 * consumer when --drain decides whether the release is done: three times
 * the default statement_timeout_ms (5 min) of a batch, so a job still being
 * graded is never missed while a crashed consumer's job does not hold the
 * drain forever ("15 minutes" in the store's query). */
#define GRADEQ_IN_PROGRESS_STALE_S (15 * 60)

/* How often a consumer re-reads the release registry, in case it missed
 * the release.<R>.draining event (events are not persistent). */
#define GRADEQ_REGISTRY_CHECK_S 30

/* A draining consumer waits this long for a delivery before it asks the
 * broker whether the release's queues are empty: --drain exits within a
 * few polls of the last job, and an idle drain costs a handful of passive
 * queue.declare round trips per second. */
#define GRADEQ_DRAIN_POLL_MS 100

/* The throttle (throttle_agent.c). A consumer re-reads its release's budget
 * this often as the fallback for a missed throttle.<R>.* event (every
 * second while it waits to pace a job); counts the release's consumers on
 * the broker this often (a consumer that joins or leaves changes every
 * share within about this long: the bound of the budget's overshoot in
 * README); and reports its state for status at least this often (status
 * shows reports younger than 30 s). */
#define GRADEQ_THROTTLE_CHECK_S 5
#define GRADEQ_THROTTLE_COUNT_S 2
#define GRADEQ_THROTTLE_REPORT_S 10

/* Release names become parts of queue names and routing keys (at most 255
 * bytes); 64 leaves room for "gradeq.grades.", ".retry.86400s" and the
 * per-consumer events queue's host and pid. */
#define GRADEQ_RELEASE_NAME_MAX 64

/* gradeq.events.log: every job.*, run.* and release.* event is routed to
 * this queue, so that none is unroutable (the management UI's "Unroutable
 * (drop)" rate stays at zero) and the recent ones can be looked at with
 * the UI's get messages. Bounded both ways: the newest 10,000 events (a few
 * MB; the oldest are dropped first) and none older than an hour, so that
 * nobody has to consume it. A queue that exists keeps the arguments it
 * was declared with (gradeq_broker_declare leaves it as it is): delete it
 * for new values to take effect. */
#define GRADEQ_EVENTS_LOG_QUEUE "gradeq.events.log"
#define GRADEQ_EVENTS_LOG_MAX_LENGTH 10000
#define GRADEQ_EVENTS_LOG_TTL_MS (60 * 60 * 1000)

/* The incremental watermark's safety overlap: the next run reads score rows
 * modified up to this long before the selection (and before the oldest
 * transaction in flight that gradeq can see), for writers that stamp
 * 'modified' before they commit, or whose transactions it cannot see (a
 * role without pg_read_all_stats). Rows of the overlap that the previous
 * run selected are not regraded again: they are older than the grade they
 * produced. */
#define GRADEQ_WATERMARK_OVERLAP_MS 5000

/* gradeq-publish --follow (and --wait) learn that the run they wait for is
 * over from its run.<id>.<state> event on gradeq.events; a user that may
 * not follow gradeq.events (gradeq-publisher declares no queue) asks the
 * database this often instead: the iteration is late by at most this much,
 * for one indexed read per poll. */
#define GRADEQ_FOLLOW_POLL_MS 50
/* An incremental run's course selection is cut into batches of even
 * sizes, at least one per consumer on the work queue (at most SHARE_MAX),
 * each of at least SHARE_MIN learners: a job's fixed cost (about 5 ms of
 * 15 for 20 learners, measured) is small against what sharing saves. The
 * publisher holds up to SHARE_MAX batches of ids to cut them evenly. */
#define GRADEQ_INCREMENTAL_SHARE_MAX 16
#define GRADEQ_INCREMENTAL_SHARE_MIN 10
/* Events are best effort: without one, the run's state is read again after
 * this long. */
#define GRADEQ_FOLLOW_EVENT_RECHECK_MS 1000

/* An iteration of --follow whose publishing failed (broker or database
 * away) is tried again after at least this long, whatever --every says:
 * no spinning on an outage; the publisher's own connection timeouts come
 * on top. */
#define GRADEQ_FOLLOW_RETRY_S 5

/* --follow warns that it falls behind once this many iterations in a row
 * each took longer than the data window it read and longer than the one
 * before: fewer is noise on a shared machine, more warns late. */
#define GRADEQ_FOLLOW_TREND 4
/* ... and once the last of them took at least this many times the first:
 * iterations of a loop that settles wander by tens of percent on a shared
 * machine; at P = 1.3 four iterations grow 2.2 times. */
#define GRADEQ_FOLLOW_TREND_GROWTH 1.5
/* ... and at least this many seconds more: iterations of a tenth of a
 * second grow 1.5 times four times in a row by chance now and then (seen
 * at P = 0.2 with 50 ms of noise); an overloaded loop grows past it within
 * a few more iterations. */
#define GRADEQ_FOLLOW_TREND_MIN_GROWTH_S 0.5

/* Members of each new quorum queue (x-quorum-initial-group-size). Three
 * survive the loss of any one node and cost a third of the writes of five;
 * a smaller cluster gets all its nodes (the broker caps the size at the
 * number of cluster members). Raft wants an odd size: 7 is plenty. */
#define GRADEQ_QUORUM_GROUP_SIZE_DEFAULT 3
#define GRADEQ_QUORUM_GROUP_SIZE_MAX 7

/* Jobs a consumer writes in one transaction at most (group_jobs): each is
 * a savepoint, a statement for its statistics and a slot of held rows; a
 * commit's WAL flush is shared well before this many. */
#define GRADEQ_GROUP_MAX_JOBS 256

/* Learners of a group at most: the rows it holds until its write are those
 * of one job of 1000 learners, the consumer's memory bound (README). */
#define GRADEQ_GROUP_MAX_LEARNERS 1000

/* Under a throttle a group holds at most the learners of this many
 * seconds at the consumer's rate (one job at least): the pacing waits a
 * group's learners at once, and a group of 1000 at 133 learners/s would
 * start a run with a burst of 7.5 s of the budget. */
#define GRADEQ_GROUP_PACED_S 1

#endif

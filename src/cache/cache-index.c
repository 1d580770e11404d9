/*
 * The SQLite index of the disk cache: which objects are known (by origin,
 * key and identity) and which of their chunks are on disk, with length,
 * CRC32C and last access. WAL mode lets readers of any process run while
 * one writes; busy_timeout plus short IMMEDIATE transactions coordinate
 * writers. This is the only file that talks to SQLite: its result codes are
 * turned into -errno here and their details logged here.
 *
 * A chunk row exists if and only if its bytes were durable on disk before
 * the row was committed. Totals are kept by triggers so that every process
 * sees the same figures without scanning.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <unistd.h>

#include "cache/cache-int.h"
#include "common/log.h"

#define CACHE_SCHEMA_VERSION 1
#define CACHE_BUSY_TIMEOUT_MS 10000

static const char *const schema_sql =
	"CREATE TABLE IF NOT EXISTS meta ("
	" name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	/* AUTOINCREMENT: ids are never reused, so a stale id only misses. */
	"CREATE TABLE IF NOT EXISTS objects ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" origin TEXT NOT NULL, key TEXT NOT NULL, etag TEXT,"
	" size INTEGER NOT NULL, mtime INTEGER NOT NULL,"
	" UNIQUE (origin, key));"
	"CREATE TABLE IF NOT EXISTS chunks ("
	" obj INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,"
	" idx INTEGER NOT NULL, len INTEGER NOT NULL, crc INTEGER NOT NULL,"
	" atime INTEGER NOT NULL, PRIMARY KEY (obj, idx)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS chunks_lru ON chunks (atime);"
	"CREATE TABLE IF NOT EXISTS totals ("
	" id INTEGER PRIMARY KEY CHECK (id = 0),"
	" chunks INTEGER NOT NULL, bytes INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO totals VALUES (0, 0, 0);"
	"CREATE TRIGGER IF NOT EXISTS chunks_ins AFTER INSERT ON chunks BEGIN"
	" UPDATE totals SET chunks = chunks + 1, bytes = bytes + NEW.len;"
	" END;"
	"CREATE TRIGGER IF NOT EXISTS chunks_del AFTER DELETE ON chunks BEGIN"
	" UPDATE totals SET chunks = chunks - 1, bytes = bytes - OLD.len;"
	" END;"
	"CREATE TRIGGER IF NOT EXISTS chunks_upd AFTER UPDATE OF len ON chunks"
	" BEGIN UPDATE totals SET bytes = bytes - OLD.len + NEW.len; END;";

/*
 * True while the directory's chunk size is still the handle's (parameter
 * n). Another process may empty the cache for another chunk size while
 * this one runs; the object ids it then hands out are this process's
 * too (one object, one id), but a chunk index no longer means the same
 * bytes: a row of one layout read by the other would be checked against
 * bytes at the wrong offset, and a chunk of zeros would pass. So rows are
 * only read, written and evicted in the layout they were made in.
 */
#define LAYOUT(n) "?" #n " = (SELECT value FROM meta WHERE name = 'chunk_size')"

static const char *const stmt_sql[CACHE_ST_COUNT] = {
	[CACHE_ST_OBJ_GET] = "SELECT id, etag, size, mtime FROM objects"
			     " WHERE origin = ?1 AND key = ?2",
	[CACHE_ST_OBJ_DEL] = "DELETE FROM objects WHERE id = ?1",
	[CACHE_ST_OBJ_ADD] = "INSERT INTO objects (origin, key, etag, size,"
			     " mtime) VALUES (?1, ?2, ?3, ?4, ?5)",
	[CACHE_ST_CHUNK_GET] = "SELECT len, crc FROM chunks"
			       " WHERE obj = ?1 AND idx = ?2 AND " LAYOUT(3),
	/* An upsert, not REPLACE: REPLACE would bypass the delete trigger. */
	[CACHE_ST_CHUNK_PUT] = "INSERT INTO chunks (obj, idx, len, crc, atime)"
			       " SELECT ?1, ?2, ?3, ?4, ?5 WHERE " LAYOUT(6)
			       " ON CONFLICT (obj, idx) DO UPDATE SET"
			       " len = excluded.len, crc = excluded.crc,"
			       " atime = excluded.atime",
	[CACHE_ST_CHUNK_DEL] = "DELETE FROM chunks"
			       " WHERE obj = ?1 AND idx = ?2 AND crc = ?3",
	[CACHE_ST_CHUNK_TOUCH] = "UPDATE chunks SET atime = ?3"
				 " WHERE obj = ?1 AND idx = ?2 AND atime < ?3",
	/* The key breaks ties in atime, so that a walk resumes exactly. */
	[CACHE_ST_LRU] = "SELECT obj, idx, len, crc, atime FROM chunks"
			 " WHERE (atime, obj, idx) > (?2, ?3, ?4) AND " LAYOUT(5)
			 " ORDER BY atime, obj, idx LIMIT ?1",
	[CACHE_ST_TOTALS] = "SELECT chunks, bytes FROM totals WHERE id = 0",
	[CACHE_ST_OBJ_COUNT] = "SELECT count(*) FROM objects",
	[CACHE_ST_CHUNK_NEXT] = "SELECT obj, idx, len, crc FROM chunks"
				" WHERE (obj, idx) > (?1, ?2)"
				" ORDER BY obj, idx LIMIT ?3",
	[CACHE_ST_OBJ_EXISTS] = "SELECT 1 FROM objects WHERE id = ?1",
	[CACHE_ST_OBJ_KEYS] = "SELECT key FROM objects WHERE origin = ?1",
};

/* The one place SQLite codes become errno values. */
static int index_errno(struct cache_db *d, int rc, const char *what)
{
	int err;

	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		err = -EBUSY;
		break;
	case SQLITE_NOMEM:
		err = -ENOMEM;
		break;
	case SQLITE_FULL:
		/* Expected when the disk fills: callers warn, rate-limited. */
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		err = -EACCES;
		break;
	case SQLITE_CANTOPEN:
		err = -ENOENT;
		break;
	case SQLITE_CONSTRAINT:
		err = -EEXIST;
		break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		err = -EUCLEAN;
		break;
	default:
		err = -EIO;
		break;
	}
	log_err("cache index: %s: %s (%d)", what,
		d && d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc), rc);
	return err;
}

static int index_exec(struct cache_db *d, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(d->db, sql, NULL, NULL, &msg);

	sqlite3_free(msg);
	return index_errno(d, rc, sql);
}

/* Prepared once per connection, reset after each use. */
static sqlite3_stmt *index_stmt(struct cache_db *d, enum cache_stmt s)
{
	int rc;

	if (d->st[s])
		return d->st[s];
	rc = sqlite3_prepare_v3(d->db, stmt_sql[s], -1,
				SQLITE_PREPARE_PERSISTENT, &d->st[s], NULL);
	if (rc != SQLITE_OK) {
		index_errno(d, rc, stmt_sql[s]);
		return NULL;
	}
	return d->st[s];
}

static void index_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

int cache_index_open(struct cache_db *d, const char *path)
{
	int rc, err, tries;

	memset(d, 0, sizeof(*d));
	rc = sqlite3_open_v2(path, &d->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		err = index_errno(d, rc, path);
		goto out_close;
	}
	sqlite3_busy_timeout(d->db, CACHE_BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(d->db, 1);
	/*
	 * synchronous=NORMAL in WAL: a commit may be lost in a power cut but
	 * the database stays consistent, and a lost commit only forgets
	 * chunks whose data is already durable. Far fewer fsyncs.
	 */
	/*
	 * Two processes opening a new directory at once both switch it to
	 * WAL, which takes an exclusive lock; SQLite answers the loser
	 * SQLITE_BUSY at once rather than through the busy handler. Wait
	 * for the winner, as a busy timeout would.
	 */
	for (tries = 0;; tries++) {
		rc = sqlite3_exec(d->db, "PRAGMA journal_mode = WAL;", NULL,
				  NULL, NULL);
		if ((rc & 0xff) != SQLITE_BUSY ||
		    tries >= CACHE_BUSY_TIMEOUT_MS / 10)
			break;
		usleep(10 * 1000);
	}
	err = index_errno(d, rc, "PRAGMA journal_mode = WAL");
	if (!err)
		err = index_exec(d, "PRAGMA synchronous = NORMAL;"
				    "PRAGMA foreign_keys = ON;");
	if (err)
		goto out_close;
	return 0;

out_close:
	sqlite3_close(d->db);
	d->db = NULL;
	return err;
}

void cache_index_close(struct cache_db *d)
{
	if (!d->db)
		return;
	for (int i = 0; i < CACHE_ST_COUNT; i++)
		sqlite3_finalize(d->st[i]);
	sqlite3_close(d->db);
	memset(d, 0, sizeof(*d));
}

int cache_index_read_only(struct cache_db *d)
{
	return index_exec(d, "PRAGMA query_only = 1;");
}

int cache_index_begin(struct cache_db *d)
{
	/* IMMEDIATE: take the write lock now, so busy_timeout applies. */
	return index_exec(d, "BEGIN IMMEDIATE");
}

int cache_index_commit(struct cache_db *d)
{
	int err = index_exec(d, "COMMIT");

	if (err)
		cache_index_rollback(d);
	return err;
}

void cache_index_rollback(struct cache_db *d)
{
	if (!sqlite3_get_autocommit(d->db))
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
}

static int meta_get(struct cache_db *d, const char *name, int64_t *v)
{
	sqlite3_stmt *st;
	int rc, err = -ENOENT;

	rc = sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE name = ?1",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return index_errno(d, rc, "meta");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		err = 0;
	} else if (rc != SQLITE_DONE) {
		err = index_errno(d, rc, "meta");
	}
	sqlite3_finalize(st);
	return err;
}

static int meta_set(struct cache_db *d, const char *name, int64_t v)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(d->db,
				"INSERT OR REPLACE INTO meta VALUES (?1, ?2)",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return index_errno(d, rc, "meta");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, v);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : index_errno(d, rc, "meta");
}

int cache_index_setup(struct cache_db *d, uint32_t *chunk_size, bool reset,
		      bool *wiped)
{
	int64_t version, cs;
	int err;

	*wiped = false;
	err = cache_index_begin(d);
	if (err)
		return err;
	err = index_exec(d, schema_sql);
	if (err)
		goto out_rollback;
	err = meta_get(d, "version", &version);
	if (err == -ENOENT)
		err = meta_set(d, "version", version = CACHE_SCHEMA_VERSION);
	if (err)
		goto out_rollback;
	if (version != CACHE_SCHEMA_VERSION) {
		log_err("cache index: schema version %" PRId64
			", this program knows %d",
			version, CACHE_SCHEMA_VERSION);
		err = -EPROTO;
		goto out_rollback;
	}
	err = meta_get(d, "chunk_size", &cs);
	if (!err && !cache_chunk_size_ok((uint64_t)cs)) {
		/* Every offset and eviction below divides by it, and cache
		 * verify would judge every row by it. */
		log_err("cache index: chunk size %" PRId64 " recorded", cs);
		err = -EUCLEAN;
		goto out_rollback;
	}
	if (err == -ENOENT) {
		if (!*chunk_size)
			*chunk_size = CACHE_DEFAULT_CHUNK_SIZE;
		err = meta_set(d, "chunk_size", *chunk_size);
	} else if (!err && !*chunk_size) {
		*chunk_size = (uint32_t)cs;
	} else if (!err && cs != *chunk_size) {
		if (!reset) {
			log_err("cache: directory holds %" PRId64
				"-byte chunks, %" PRIu32 " asked for",
				cs, *chunk_size);
			err = -ESTALE;
			goto out_rollback;
		}
		log_warn("cache: chunk size %" PRId64 " -> %" PRIu32
			 ": emptying the cache",
			 cs, *chunk_size);
		err = index_exec(d, "DELETE FROM objects;");
		if (!err)
			err = meta_set(d, "chunk_size", *chunk_size);
		*wiped = true;
	}
	if (err)
		goto out_rollback;
	d->chunk_size = *chunk_size;
	return cache_index_commit(d);

out_rollback:
	cache_index_rollback(d);
	return err;
}

/* Same identity: the ETag when there is one, otherwise size and mtime. */
static bool same_object(sqlite3_stmt *st, const char *etag, uint64_t size,
			int64_t mtime)
{
	const char *old = (const char *)sqlite3_column_text(st, 1);

	if ((uint64_t)sqlite3_column_int64(st, 2) != size)
		return false;
	if (etag && *etag)
		return old && strcmp(old, etag) == 0;
	return !old && sqlite3_column_int64(st, 3) == mtime;
}

/* Run CACHE_ST_OBJ_GET for (origin, key); the caller reads the row and
 * calls index_done. */
static int obj_get_step(sqlite3_stmt *st, const char *origin, const char *key)
{
	sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	return sqlite3_step(st);
}

int cache_index_object_find(struct cache_db *d, const char *origin,
			    const char *key, const char *etag, uint64_t size,
			    int64_t mtime, uint64_t *id)
{
	sqlite3_stmt *st;
	int rc;

	*id = 0;
	st = index_stmt(d, CACHE_ST_OBJ_GET);
	if (!st)
		return -EIO;
	rc = obj_get_step(st, origin, key);
	if (rc == SQLITE_ROW && same_object(st, etag, size, mtime)) {
		*id = (uint64_t)sqlite3_column_int64(st, 0);
		index_done(st);
		return 0;
	}
	index_done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return index_errno(d, rc, "object lookup");
	return -ENOENT;
}

int cache_index_object(struct cache_db *d, const char *origin, const char *key,
		       const char *etag, uint64_t size, int64_t mtime,
		       bool replace, uint64_t *id, uint64_t *stale)
{
	sqlite3_stmt *st;
	int rc, err;

	*id = 0;
	*stale = 0;
	st = index_stmt(d, CACHE_ST_OBJ_GET);
	if (!st)
		return -EIO;
	err = cache_index_begin(d);
	if (err)
		return err;
	/* Under the lock: another process may have got there first. */
	rc = obj_get_step(st, origin, key);
	if (rc == SQLITE_ROW) {
		uint64_t old = (uint64_t)sqlite3_column_int64(st, 0);

		if (same_object(st, etag, size, mtime)) {
			*id = old;
			index_done(st);
			return cache_index_commit(d);
		}
		index_done(st);
		if (!replace) {
			err = -EEXIST;
			goto out_rollback;
		}
		st = index_stmt(d, CACHE_ST_OBJ_DEL);
		if (!st) {
			err = -EIO;
			goto out_rollback;
		}
		sqlite3_bind_int64(st, 1, (int64_t)old);
		rc = sqlite3_step(st);
		index_done(st);
		err = index_errno(d, rc, "object delete");
		if (err)
			goto out_rollback;
		*stale = old;
	} else {
		index_done(st);
		err = index_errno(d, rc, "object lookup");
		if (err)
			goto out_rollback;
	}
	st = index_stmt(d, CACHE_ST_OBJ_ADD);
	if (!st) {
		err = -EIO;
		goto out_rollback;
	}
	sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	if (etag && *etag)
		sqlite3_bind_text(st, 3, etag, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_int64(st, 4, (int64_t)size);
	sqlite3_bind_int64(st, 5, mtime);
	rc = sqlite3_step(st);
	index_done(st);
	err = index_errno(d, rc, "object insert");
	if (err)
		goto out_rollback;
	*id = (uint64_t)sqlite3_last_insert_rowid(d->db);
	err = cache_index_commit(d);
	if (err)
		*id = *stale = 0;
	return err;

out_rollback:
	cache_index_rollback(d);
	*stale = 0;
	return err;
}

int cache_index_chunk_get(struct cache_db *d, uint64_t obj, uint64_t idx,
			  uint32_t *len, uint32_t *crc)
{
	sqlite3_stmt *st = index_stmt(d, CACHE_ST_CHUNK_GET);
	int rc, err = -ENOENT;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)obj);
	sqlite3_bind_int64(st, 2, (int64_t)idx);
	sqlite3_bind_int64(st, 3, d->chunk_size);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*len = (uint32_t)sqlite3_column_int64(st, 0);
		*crc = (uint32_t)sqlite3_column_int64(st, 1);
		err = 0;
	} else if (rc != SQLITE_DONE) {
		err = index_errno(d, rc, "chunk lookup");
	}
	index_done(st);
	return err;
}

int cache_index_chunk_put(struct cache_db *d, const struct cache_chunk_ref *r,
			  int64_t atime)
{
	sqlite3_stmt *st = index_stmt(d, CACHE_ST_CHUNK_PUT);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)r->obj);
	sqlite3_bind_int64(st, 2, (int64_t)r->idx);
	sqlite3_bind_int64(st, 3, r->len);
	sqlite3_bind_int64(st, 4, r->crc);
	sqlite3_bind_int64(st, 5, atime);
	sqlite3_bind_int64(st, 6, d->chunk_size);
	rc = sqlite3_step(st);
	index_done(st);
	/* The object was dropped meanwhile (new ETag, clear): not an error. */
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return -ENOENT;
	if (rc == SQLITE_DONE && !sqlite3_changes(d->db)) {
		/* Not inserted: the directory has another chunk size now. */
		if (!d->layout_lost)
			log_warn("cache: another process changed the chunk "
				 "size of the cache; this one no longer "
				 "caches in it");
		d->layout_lost = true;
		return -ENOENT;
	}
	return index_errno(d, rc, "chunk insert");
}

int cache_index_chunk_del(struct cache_db *d, uint64_t obj, uint64_t idx,
			  uint32_t crc)
{
	sqlite3_stmt *st = index_stmt(d, CACHE_ST_CHUNK_DEL);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)obj);
	sqlite3_bind_int64(st, 2, (int64_t)idx);
	sqlite3_bind_int64(st, 3, crc);
	rc = sqlite3_step(st);
	index_done(st);
	if (rc == SQLITE_DONE && !sqlite3_changes(d->db))
		return -ENOENT;
	return index_errno(d, rc, "chunk delete");
}

int cache_index_chunk_touch(struct cache_db *d, uint64_t obj, uint64_t idx,
			    int64_t atime)
{
	sqlite3_stmt *st = index_stmt(d, CACHE_ST_CHUNK_TOUCH);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)obj);
	sqlite3_bind_int64(st, 2, (int64_t)idx);
	sqlite3_bind_int64(st, 3, atime);
	rc = sqlite3_step(st);
	index_done(st);
	return index_errno(d, rc, "chunk touch");
}

static int index_refs(struct cache_db *d, sqlite3_stmt *st,
		      struct cache_chunk_ref *out, size_t n, size_t *nout)
{
	int rc;

	*nout = 0;
	while (*nout < n && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct cache_chunk_ref *r = &out[(*nout)++];

		r->obj = (uint64_t)sqlite3_column_int64(st, 0);
		r->idx = (uint64_t)sqlite3_column_int64(st, 1);
		r->len = (uint32_t)sqlite3_column_int64(st, 2);
		r->crc = (uint32_t)sqlite3_column_int64(st, 3);
		r->atime = 0;
		if (sqlite3_column_count(st) > 4) /* the LRU list */
			r->atime = sqlite3_column_int64(st, 4);
	}
	if (*nout == n)
		rc = SQLITE_DONE;
	index_done(st);
	return index_errno(d, rc, "chunk list");
}

int cache_index_lru(struct cache_db *d, const struct cache_chunk_ref *after,
		    struct cache_chunk_ref *out, size_t n, size_t *nout)
{
	sqlite3_stmt *st = index_stmt(d, CACHE_ST_LRU);

	*nout = 0;
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)n);
	sqlite3_bind_int64(st, 2, after->atime);
	sqlite3_bind_int64(st, 3, (int64_t)after->obj);
	sqlite3_bind_int64(st, 4, (int64_t)after->idx);
	sqlite3_bind_int64(st, 5, d->chunk_size);
	return index_refs(d, st, out, n, nout);
}

int cache_index_chunks_after(struct cache_db *d, uint64_t obj, uint64_t idx,
			     struct cache_chunk_ref *out, size_t n,
			     size_t *nout)
{
	sqlite3_stmt *st = index_stmt(d, CACHE_ST_CHUNK_NEXT);

	*nout = 0;
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)obj);
	sqlite3_bind_int64(st, 2, (int64_t)idx);
	sqlite3_bind_int64(st, 3, (int64_t)n);
	return index_refs(d, st, out, n, nout);
}

static int index_count(struct cache_db *d, enum cache_stmt s, uint64_t *a,
		       uint64_t *b)
{
	sqlite3_stmt *st = index_stmt(d, s);
	int rc;

	if (!st)
		return -EIO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*a = (uint64_t)sqlite3_column_int64(st, 0);
		if (b)
			*b = (uint64_t)sqlite3_column_int64(st, 1);
		rc = SQLITE_DONE;
	}
	index_done(st);
	return index_errno(d, rc, "totals");
}

int cache_index_totals(struct cache_db *d, uint64_t *objects, uint64_t *chunks,
		       uint64_t *bytes)
{
	uint64_t c = 0, b = 0, o = 0;
	int err;

	/* One read transaction, so the figures agree with each other. */
	err = index_exec(d, "BEGIN");
	if (err)
		return err;
	err = index_count(d, CACHE_ST_TOTALS, &c, &b);
	if (!err && objects)
		err = index_count(d, CACHE_ST_OBJ_COUNT, &o, NULL);
	cache_index_rollback(d);
	if (objects)
		*objects = o;
	if (chunks)
		*chunks = c;
	if (bytes)
		*bytes = b;
	return err;
}

int cache_index_object_known(struct cache_db *d, const char *origin,
			     const char *key)
{
	sqlite3_stmt *st = index_stmt(d, CACHE_ST_OBJ_GET);
	int rc;

	if (!st)
		return -EIO;
	rc = obj_get_step(st, origin, key);
	index_done(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : index_errno(d, rc, "object lookup");
}

int cache_index_object_keys(struct cache_db *d, const char *origin,
			    void (*fn)(void *arg, const char *key), void *arg)
{
	sqlite3_stmt *st = index_stmt(d, CACHE_ST_OBJ_KEYS);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);

		if (key)
			fn(arg, key);
	}
	index_done(st);
	return rc == SQLITE_DONE ? 0 : index_errno(d, rc, "object keys");
}

int cache_index_obj_exists(struct cache_db *d, uint64_t obj)
{
	sqlite3_stmt *st = index_stmt(d, CACHE_ST_OBJ_EXISTS);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)obj);
	rc = sqlite3_step(st);
	index_done(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : index_errno(d, rc, "object");
}

int cache_index_clear(struct cache_db *d, const char *origin, bool list_only,
		      uint64_t **ids, size_t *nids)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc, err;

	*ids = NULL;
	*nids = 0;
	err = list_only ? index_exec(d, "BEGIN") : cache_index_begin(d);
	if (err)
		return err;
	/* Not DELETE ... RETURNING: that needs SQLite 3.35. */
	rc = sqlite3_prepare_v2(
		d->db,
		origin ? "SELECT id FROM objects WHERE origin = ?1"
		       : "SELECT id FROM objects",
		-1, &st, NULL);
	if (rc != SQLITE_OK) {
		err = index_errno(d, rc, "clear");
		goto out_rollback;
	}
	if (origin)
		sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*nids == cap) {
			uint64_t *n;

			cap = cap ? 2 * cap : 64;
			n = realloc(*ids, cap * sizeof(**ids));
			if (!n) {
				err = -ENOMEM;
				goto out_rollback;
			}
			*ids = n;
		}
		(*ids)[(*nids)++] = (uint64_t)sqlite3_column_int64(st, 0);
	}
	err = index_errno(d, rc, "clear");
	if (err)
		goto out_rollback;
	sqlite3_finalize(st);
	st = NULL;
	if (list_only) {
		cache_index_rollback(d);
		return 0;
	}
	rc = sqlite3_prepare_v2(d->db,
				origin ? "DELETE FROM objects WHERE origin = ?1"
				       : "DELETE FROM objects",
				-1, &st, NULL);
	if (rc != SQLITE_OK) {
		err = index_errno(d, rc, "clear");
		goto out_rollback;
	}
	if (origin)
		sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	err = index_errno(d, rc, "clear");
	if (err)
		goto out_rollback;
	sqlite3_finalize(st);
	st = NULL;
	err = cache_index_commit(d);
	if (err)
		goto out_free;
	return 0;

out_rollback:
	sqlite3_finalize(st);
	cache_index_rollback(d);
out_free:
	free(*ids);
	*ids = NULL;
	*nids = 0;
	return err;
}

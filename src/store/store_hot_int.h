/*
 * The hot inbox's private structures, shared by store_hot.c (the held
 * pushes, their device cache, folding) and store_journal.c (the journal
 * files: records, io_uring writes, replay, the owner's lock).  Writer
 * thread only, except what store_hot.c guards with store_hot.mu.
 */
#ifndef HERALD_STORE_HOT_INT_H
#define HERALD_STORE_HOT_INT_H

#include <liburing.h>
#include <sys/types.h>

#include "store/store_int.h"

#define HOT_PAYLOAD_MAX (1u << 20) /* bytes: larger pushes take SQL */

typedef struct hot_dev hot_dev_t;
typedef struct hot_ent hot_ent_t;

struct hot_ent {
    hot_ent_t *next;  /* FIFO of all entries (fold order) */
    hot_ent_t *dnext; /* this device's entries, by seq */
    hot_dev_t *dev;
    int64_t seq, created, expires, at_acked;
    int64_t at_dropped; /* inbox_max pushed it out, undelivered */
    int32_t ttl;
    bool need_ack;
    bool doomed;      /* store__hot_discard: leaving */
    uint8_t file;     /* journal file holding its record */
    uint64_t born_ms; /* mono */
    char msg_id[40];
    size_t payload_len;
    uint8_t payload[];
};

struct hot_dev {
    hot_dev_t *hnext; /* hash chain */
    hot_dev_t *dirty_next;
    int64_t last_seq, acked, cursor;
    bool dirty; /* head or ack ahead of its SQLite row */
    /* SQLite may hold unacked inbox rows of this device up to sql_max;
     * sql_acked is how far acks have removed them. */
    int64_t sql_max, sql_acked;
    hot_ent_t *first, *last;
    /* The first entry an ack has not reached (seq > acked), so an ack
     * walks only what it newly covers, not every held entry before. */
    hot_ent_t *ack_next;
    /* inbox_max: seqs up to drop_to are dropped (held entries marked,
     * SQLite's rows trimmed by the next fold up to sql_trimmed);
     * drop_next is the first held entry beyond drop_to. */
    int64_t drop_to, sql_trimmed;
    hot_ent_t *drop_next;
    uint32_t hash;
    size_t app_len;
    char key[]; /* app NUL device NUL */
};

struct store_hot {
    int fd[2];
    uint64_t gen[2]; /* the generation its header names */
    off_t off[2];    /* where its next record goes */
    off_t size[2];   /* bytes allocated (written once as zeros) */
    long live[2];    /* unfolded records per file */
    uint32_t idx[2]; /* the next record's index in the file */
    /* What is on disk (fdatasynced), and what journal_files says of it
     * (end_idx, written with folds: replay's lower bound). */
    off_t synced_off[2];
    uint32_t synced_idx[2], db_idx[2];
    /* A failed write may have left records of pushes answered with a
     * failure up to here: the next write of the file zeroes them. */
    off_t stale_end[2];
    /* The batch being written: where it starts, its first index, how
     * many bytes go out (records and zeros). */
    off_t batch_off;
    uint32_t batch_idx;
    size_t wlen;
    int batch_rc;     /* inflight -1: the outcome, known at once */
    bool batch_wrote; /* ... and whether bytes may have landed */
    bool missing[2];  /* at open: the file did not exist */
    bool owner;       /* this store holds the journal's locks */
    int cur;
    int walfd; /* PATH-wal, for fdatasync; -1 = not yet */
    hot_ent_t *head, *tail;
    long n;
    hot_dev_t **buckets;
    uint32_t nbuckets, ndev;
    hot_dev_t *dirty;
    uint8_t *jbuf; /* this batch's records */
    size_t jlen, jcap;
    /* The batch's write and fdatasync go through io_uring, so the writer
     * folds older pushes while the disk flushes (store__hot_sync_start). */
    struct io_uring ring;
    bool ring_ok, ring_tried;
    bool sync; /* fdatasync at all (synchronous_full) */
    /* Readers (store__hot_fetch) walk the device table and entry lists:
     * the writer changes them under mu.  Never held while taking another
     * lock or waiting on anything. */
    pthread_mutex_t mu;
    int inflight;        /* completions still to reap */
    hot_ent_t *unsynced; /* first push whose record is not on disk */
};

/* store_journal.c */
/* Appends e's record to this batch's buffer (written by sync_start). */
int store__journal_add(store_hot_t *h, const hot_ent_t *e);
/* Starts file i over under generation gen: its old records are dead.
 * journal_files must say gen first (store__journal_row): a crash between
 * the two then finds a file with nothing of that generation in it. */
int store__journal_restart(store_hot_t *h, int i, uint64_t gen);
/* journal_files' row of file i: generation gen, no records yet, in_use
 * (the file is about to be written) or not (emptied).  Write connection. */
int store__journal_row(store_sq_t *st, int i, uint64_t gen, bool in_use);
/* Writes how far each file's records are on disk into journal_files, for
 * files that moved since the last call: inside a fold's transaction. */
int store__journal_note_ends(store_sq_t *st);
/* fdatasync of both files (nothing when h->sync is off); 0 or error. */
int store__journal_flush(store_hot_t *h);
/* Takes the owner's lock on both files (an exclusive opener waits for a
 * dead owner's last writes); false: another process owns them. */
bool store__journal_lock(store_sq_t *st, store_hot_t *h);
/* Forgets this process's ownership (the store closing). */
void store__journal_unlock(store_hot_t *h);
/* Replays both files into SQLite (one synced transaction) and starts
 * them over; 0 or an error. */
int store__journal_replay(store_sq_t *st, store_hot_t *h);

#endif

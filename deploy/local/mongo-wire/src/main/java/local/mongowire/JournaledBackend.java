package local.mongowire;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.KeyValue;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerException;
import io.netty.channel.Channel;

/**
 * The memory backend made durable by a journal of effects: the default backend.
 *
 * <p>Every change to a stored document is appended to the {@link Journal} as it happens, as the
 * whole new document or a deletion by key (plus collection drops); index definitions and the
 * list of collections are documents too (system.indexes, system.namespaces), so they are covered
 * the same way. Effects rather than commands, so that values the server generates (ObjectIds of
 * upserts, $currentDate) come back identical. Before any reply is sent, the journal is written
 * and fsynced up to the last effect appended so far ({@link #handleCommand}): an acknowledged
 * write survives kill -9 and a machine crash, and a read never returns what a crash could still
 * take back. Concurrent commands share fsyncs.
 *
 * <p>When the journal has grown past a limit, a background thread starts a new one and writes a
 * snapshot of all collections ({@link Store}) while writes go on (a fuzzy checkpoint: {@link
 * #snapshot}), copying a chunk of a collection's documents at a time under its lock. A start
 * reads the newest snapshot and replays the journals after it: collections are then filled
 * before their indexes are built, as the H2 backend does.
 */
final class JournaledBackend extends MemoryBackend {
    private static final Logger log = LoggerFactory.getLogger(JournaledBackend.class);
    private static final int SNAPSHOT_CHUNK = 200;
    private static final int SYNC_MS = 500;
    static final String SNAPSHOT_COMMAND = "mongoWireSnapshot";

    private final Store store;
    private final long snapshotAfterBytes;
    /** The state read at start, while the databases are opened from it; then null. */
    private Store.State restoring;
    /** Null while restoring: the restored documents are not journaled again. */
    private final Journal journal;
    /** Collections that exist (not dropped): what a snapshot writes. */
    private final Set<Coll> live = ConcurrentHashMap.newKeySet();
    private final ScheduledExecutorService background = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread thread = new Thread(r, "mongo-wire-snapshots");
        thread.setDaemon(true);
        return thread;
    });
    private final AtomicBoolean snapshotting = new AtomicBoolean();
    /** After a failed snapshot, the next attempt waits (each attempt starts a journal file). */
    private volatile long nextAttemptNanos = System.nanoTime();
    private static final long RETRY_NANOS = TimeUnit.SECONDS.toNanos(60);

    /** DIR: the folder (created if missing); SNAPSHOT_AFTER_BYTES: journal size that starts a snapshot. */
    JournaledBackend(Path dir, boolean fsync, long snapshotAfterBytes) throws IOException {
        this.store = new Store(dir);
        this.snapshotAfterBytes = snapshotAfterBytes;
        long began = System.nanoTime();
        restoring = store.load();
        for (Map.Entry<String, Map<String, LinkedHashMap<KeyValue, Document>>> database : new ArrayList<>(restoring.entrySet())) {
            if (database.getValue().values().stream().anyMatch(documents -> !documents.isEmpty())) {
                resolveDatabase(database.getKey());  // not one whose collections were all dropped
            }
        }
        log.info("restored {} effects ({} MB) in {} ms", restoring.records, String.format("%.1f", restoring.bytes / 1e6),
            (System.nanoTime() - began) / 1_000_000);
        restoring = null;
        journal = store.startJournal(fsync);
        if (!fsync) {
            background.scheduleWithFixedDelay(journal::syncIfNeeded, SYNC_MS, SYNC_MS, TimeUnit.MILLISECONDS);
        }
    }

    @Override public MemoryDatabase openOrCreateDatabase(String name) {
        return new Db(name, getCursorRegistry());
    }

    // Every command arrives here: OP_MSG through handleMessage, legacy OP_QUERY on $cmd directly.
    // The wire handler sends the reply only after this returns.
    @Override public Document handleCommand(Channel channel, String database, String command, Document query) {
        if (command.equalsIgnoreCase(IndexStats.COMMAND)) {
            return IndexStats.command(database, query);  // changes nothing: no journal to wait for
        }
        try {
            journal.checkHealthy();
        } catch (IOException e) {
            throw new MongoServerException(e.getMessage());
        }
        try {
            if (command.equalsIgnoreCase(SNAPSHOT_COMMAND)) {
                return snapshotNow();
            }
            return super.handleCommand(channel, database, command, query);
        } finally {
            // Also after a failed command: whatever it changed before failing is journaled.
            try {
                journal.awaitDurable(journal.appendedPosition());
            } catch (IOException e) {
                log.error("the journal failed: acknowledging nothing any more", e);
                throw new MongoServerException("journal write failed: " + e);
            }
            maybeSnapshot();
        }
    }

    /**
     * {mongoWireSnapshot: 1}: write a snapshot now (after one already running), reply when it is
     * complete: for tests and benchmarks of snapshots under load, and to shorten the next start.
     */
    private Document snapshotNow() {
        try {
            while (!snapshotting.compareAndSet(false, true)) {
                Thread.sleep(10);
            }
            Document done = background.submit(this::snapshot).get();
            if (done == null) {
                throw new MongoServerException("the snapshot failed: see the server's log");
            }
            return done.append("ok", 1.0);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new MongoServerException("interrupted");
        } catch (java.util.concurrent.ExecutionException e) {
            throw new MongoServerException("the snapshot failed: " + e.getCause());
        }
    }

    private void maybeSnapshot() {
        if (journal.fileBytes() > Math.max(snapshotAfterBytes, store.lastSnapshotBytes())
                && System.nanoTime() - nextAttemptNanos >= 0 && snapshotting.compareAndSet(false, true)) {
            background.execute(this::snapshot);
        }
    }

    /**
     * A fuzzy checkpoint: journal G is started first, then every collection is copied while writes
     * go on, each document's fields taken together under its collection's lock ({@link
     * Coll#writeTo}). The copy holds each document as of some moment after G began; any change after that moment is also in journal G (appended
     * inside the same lock, in order), and replaying G over the copy ends at the journal's value,
     * because every effect is idempotent: the whole document, a deletion by key, a drop.
     */
    private Document snapshot() {
        try {
            long began = System.nanoTime();
            long gen = store.nextGeneration();
            journal.rotate(Journal.prepare(store.journalPath(gen)));
            log.info("snapshot {}: journal {} started in {} ms; copying the collections", gen, gen, (System.nanoTime() - began) / 1_000_000);
            Fields fields = new Fields();
            return store.writeSnapshot(gen, sink -> {
                for (Coll collection : live) {
                    collection.writeTo(sink, fields);
                }
            });
        } catch (IOException | RuntimeException e) {
            // The journals are all still there: nothing is lost, the next attempt starts anew.
            log.error("snapshot failed; the next attempt in 60 s at the earliest", e);
            nextAttemptNanos = System.nanoTime() + RETRY_NANOS;
            return null;
        } finally {
            snapshotting.set(false);
        }
    }

    @Override public void close() {
        background.shutdownNow();
        try {
            journal.close();
        } catch (IOException e) {
            log.error("closing the journal failed", e);
        }
        super.close();
    }

    /** A database whose collections journal their changes. */
    final class Db extends IdLookupBackends.MemoryDb {
        // Runs (via MemoryDatabase's constructor) before this class's own fields would be set:
        // it uses only the enclosing backend, whose reference javac stores before super().
        Db(String name, CursorRegistry cursors) {
            super(name, cursors);
        }

        @Override protected MemoryCollection openOrCreateCollection(String name, CollectionOptions options) {
            Coll collection = new Coll(this, name, options, cursorRegistry);
            if (restoring != null) {
                Map<String, LinkedHashMap<KeyValue, Document>> collections = restoring.get(getDatabaseName());
                LinkedHashMap<KeyValue, Document> documents = collections == null ? null : collections.remove(name);
                if (documents != null) {
                    documents.values().forEach(collection::load);
                }
            }
            live.add(collection);
            return collection;
        }
    }

    /** The memory collection (counting its queries), journaling each document it adds, changes or removes. */
    final class Coll extends CountedCollections.Memory {
        /** One past the highest position ever used (MemoryCollection's list is private). */
        private int end;
        private boolean dropped;

        Coll(MongoDatabase database, String name, CollectionOptions options, CursorRegistry cursors) {
            super(database, name, options, cursors);
        }

        /** A restored document: added without being journaled again. */
        void load(Document document) {
            Integer position = super.addDocumentInternal(document);
            end = Math.max(end, position + 1);
        }

        private void record(byte kind, Document document) {
            if (journal != null && !dropped) {
                journal.append(kind, getDatabaseName(), getCollectionName(), document);
            }
        }

        // The three hooks below run inside the synchronized methods of the collection.
        @Override protected Integer addDocumentInternal(Document document) {
            Integer position = super.addDocumentInternal(document);
            end = Math.max(end, position + 1);
            record(Journal.Record.PUT, document);
            return position;
        }

        @Override protected void handleUpdate(Integer position, Document oldDocument, Document newDocument) {
            String name = getCollectionName();
            if (!Store.Keys.of(name, oldDocument).equals(Store.Keys.of(name, newDocument))) {
                record(Journal.Record.DELETE, Store.Keys.keyFields(name, oldDocument));  // system.indexes after a rename
            }
            record(Journal.Record.PUT, newDocument);
        }

        @Override protected void removeDocument(Integer position) {
            Document document = getDocument(position);
            super.removeDocument(position);
            if (document != null) {
                record(Journal.Record.DELETE, Store.Keys.keyFields(getCollectionName(), document));
            }
        }

        @Override public synchronized void drop() {
            super.drop();
            record(Journal.Record.DROP, null);
            dropped = true;
            live.remove(this);
        }

        /** A rename is journaled as: both names dropped, then every document under the new name. */
        @Override public synchronized void renameTo(MongoDatabase newDatabase, String newName) {
            String oldDatabase = getDatabaseName();
            String oldName = getCollectionName();
            super.renameTo(newDatabase, newName);
            if (journal != null && !dropped) {
                journal.append(Journal.Record.DROP, oldDatabase, oldName, null);
                record(Journal.Record.DROP, null);
                for (int position = 0; position < end; position++) {
                    Document document = getDocument(position);
                    if (document != null) {
                        record(Journal.Record.PUT, document);
                    }
                }
            }
        }

        /**
         * Its documents into a snapshot, a chunk at a time: under the lock only the references to
         * each document's top-level keys and values are copied, into arrays kept for the whole
         * snapshot (no garbage: a snapshot must not force a GC); the encoding and the writing come
         * after the lock is released. So writers to the collection wait for a few hundred
         * reference copies, not for the encoding, which a busy machine may preempt for 100 ms and
         * more. That is consistent because an update puts deep clones of the changed fields into
         * the stored document and never changes a nested value in place; and even a value changed
         * under the encoder would not reach the result: that change came after journal G began, so
         * G holds the whole document after it, and the replay puts that over the copy.
         */
        void writeTo(Store.Sink sink, Fields fields) throws IOException {
            int position = 0;
            boolean more = true;
            while (more) {
                String database;
                String name;
                int documents = 0;
                synchronized (this) {
                    long locked = System.nanoTime();
                    if (dropped) {
                        return;
                    }
                    database = getDatabaseName();
                    name = getCollectionName();
                    fields.clear();
                    for (int stop = Math.min(end, position + SNAPSHOT_CHUNK); position < stop; position++) {
                        Document document = getDocument(position);
                        if (document != null) {
                            for (Map.Entry<String, Object> field : document.entrySet()) {
                                fields.add(field.getKey(), field.getValue());
                            }
                            fields.ends[documents++] = fields.size;
                        }
                    }
                    more = position < end;
                    sink.held(System.nanoTime() - locked);
                }
                for (int i = 0, from = 0; i < documents; from = fields.ends[i], i++) {
                    sink.put(database, name, fields.keys, fields.values, from, fields.ends[i]);
                }
                fields.clear();
                sink.drainIfFull();
            }
        }
    }

    /** The top-level fields of a chunk of documents, copied under the collection's lock. */
    static final class Fields {
        String[] keys = new String[1 << 14];
        Object[] values = new Object[1 << 14];
        final int[] ends = new int[SNAPSHOT_CHUNK];
        int size;

        void add(String key, Object value) {
            if (size == keys.length) {
                keys = java.util.Arrays.copyOf(keys, size * 2);
                values = java.util.Arrays.copyOf(values, size * 2);
            }
            keys[size] = key;
            values[size++] = value;
        }

        /** Drop the references, so that the arrays keep no old value alive. */
        void clear() {
            java.util.Arrays.fill(values, 0, size, null);
            size = 0;
        }
    }
}

package local.mongowire;

import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Supplier;

import org.h2.mvstore.MVStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import de.bwaldvogel.mongo.bson.Document;

/**
 * Acknowledged writes are durable: every command that may write is committed to the H2 file before
 * its reply is sent.
 *
 * <p>By default mongo-java-server's H2 backend opens the MVStore with auto-commit: a background
 * thread commits about once a second (and whenever about 19 MB of changes are pending), so writes
 * acknowledged less than a second before a kill -9 were lost. Here the store is opened without
 * auto-commit ({@link #open}) and:
 * <ul>
 *   <li>each write command runs holding the shared side of a read-write lock; afterwards (also when
 *       it failed half-way) the command takes the exclusive side and commits, unless a commit by
 *       another command already wrote its changes. Concurrent writers therefore share commits
 *       (group commit), and a commit never sees a command half-applied (an index entry without its
 *       document), so what is on disk is always a state between whole commands;</li>
 *   <li>read commands ({@link #READS}, and aggregate without $out/$merge) take no lock and commit
 *       nothing;</li>
 *   <li>the housekeeping the background thread used to do (rewriting sparse chunks so the file does
 *       not grow without bound) runs every few seconds under the exclusive lock.</li>
 * </ul>
 * Each commit is also fsynced before the reply, so an acknowledged write survives a crash of the
 * whole machine too, not only of this process. With {@code --no-fsync} (for disks where fsync is
 * slow) a commit only reaches the OS page cache, which is enough to survive kill -9 of this process;
 * the file is then fsynced every half second, so a machine crash loses at most that, and a retention
 * time keeps the file consistent meanwhile.
 */
final class DurableCommits {
    private static final Logger log = LoggerFactory.getLogger(DurableCommits.class);

    /** Commands that never write (lower case). Anything else counts as a write and is committed. */
    static final Set<String> READS = Set.of(
        "find", "getmore", "count", "distinct", "listcollections", "listindexes", "listdatabases",
        "killcursors", "endsessions", "hello", "ismaster", "ping", "buildinfo", "whatsmyuri", "serverstatus",
        "hostinfo", "getlog", "getcmdlineopts", "getparameter", "connectionstatus", "dbstats", "collstats",
        "getlasterror", "getfreemonitoringstatus", "currentop", "explain");

    private static final int SYNC_MS = 500;
    /** H2 overwrites a chunk no longer used only after half of this: well after the sync above. */
    private static final int RETENTION_MS = 2_000;
    private static final int HOUSEKEEPING_SECONDS = 5;
    private static final int HOUSEKEEPING_TARGET_FILL_RATE = 80;
    private static final int HOUSEKEEPING_WRITE_BYTES = 4 << 20;

    private final MVStore store;
    private final boolean fsync;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final ScheduledExecutorService housekeeping;
    private volatile boolean unsynced;

    /** The MVStore of FILE (null: in memory), committed only by this class. */
    static MVStore open(String file, boolean fsync) {
        MVStore store = new MVStore.Builder()
            .fileName(file)
            .autoCommitDisabled()      // no background commit thread
            .autoCommitBufferSize(0)   // and no commit by whichever thread fills the write buffer
            .open();
        // How long a chunk no longer in use is kept before its space is reused: H2's 45 s default
        // assumes nobody syncs and, at one commit per write, would let the file grow by ~20 KB per
        // write for 45 s (GBs under load). Here it needs to outlast only the time until the chunk
        // that replaced it is on disk: at once by default, within SYNC_MS with --no-fsync.
        store.setRetentionTime(fsync ? 0 : RETENTION_MS);
        return store;
    }

    DurableCommits(MVStore store, boolean fsync) {
        this.store = store;
        this.fsync = fsync;
        this.housekeeping = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread thread = new Thread(r, "mongo-wire-housekeeping");
            thread.setDaemon(true);
            return thread;
        });
        housekeeping.scheduleWithFixedDelay(this::compact, HOUSEKEEPING_SECONDS, HOUSEKEEPING_SECONDS, TimeUnit.SECONDS);
        if (!fsync) {
            housekeeping.scheduleWithFixedDelay(this::sync, SYNC_MS, SYNC_MS, TimeUnit.MILLISECONDS);
        }
    }

    static boolean isWrite(String command, Document query) {
        String name = command.toLowerCase(Locale.ROOT);
        if (name.equals("aggregate")) {
            return query.get("pipeline") instanceof List<?> stages && stages.stream().anyMatch(
                stage -> stage instanceof Document d && (d.containsKey("$out") || d.containsKey("$merge")));
        }
        return !READS.contains(name);
    }

    /** Run a write command, then make what it changed durable before the caller replies. */
    <T> T write(Supplier<T> command) {
        lock.readLock().lock();
        try {
            return command.get();
        } finally {
            lock.readLock().unlock();
            commit();
        }
    }

    /** Write everything changed so far to the file; a no-op when another commit already did. */
    void commit() {
        lock.writeLock().lock();
        try {
            commitLocked();
        } finally {
            lock.writeLock().unlock();
        }
    }

    private void commitLocked() {
        if (!store.isClosed() && store.hasUnsavedChanges()) {
            store.commit();
            if (fsync) {
                store.sync();
            } else {
                unsynced = true;
            }
        }
    }

    /** With --no-fsync: what was committed reaches the disk within SYNC_MS (a machine crash loses at most that). */
    private void sync() {
        try {
            if (unsynced && !store.isClosed()) {
                unsynced = false;
                store.sync();  // no lock: commits go on meanwhile
            }
        } catch (RuntimeException e) {
            log.warn("fsync of the H2 store failed", e);
        }
    }

    /** What H2's background thread would do: rewrite sparse chunks so the file does not keep growing. */
    private void compact() {
        lock.writeLock().lock();
        try {
            if (store.isClosed() || store.getFileStore() == null) {
                return;
            }
            store.compact(HOUSEKEEPING_TARGET_FILL_RATE, HOUSEKEEPING_WRITE_BYTES);
            commitLocked();
        } catch (RuntimeException e) {
            log.warn("housekeeping of the H2 store failed", e);
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Stop the housekeeping; the caller then closes the store (which commits what is left). */
    void close() {
        housekeeping.shutdownNow();
        commit();
    }
}

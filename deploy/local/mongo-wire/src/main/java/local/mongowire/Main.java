package local.mongowire;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

/**
 * Starts mongo-java-server on a host and port, with the journal (default), H2 (file) or memory backend.
 *
 * <p>Usage: java -jar mongo-wire.jar [--host 127.0.0.1] [--port 27017] [--backend journal|h2|memory]
 * [--dir path/to/folder] [--snapshot-after BYTES] [--file path/to/store.mv] [--no-fsync]
 *
 * <p>The journal backend ({@link JournaledBackend}, folder {@code --dir}) keeps the data in memory
 * and journals every document change, fsynced before the reply; a snapshot is written whenever the
 * journal passes {@code --snapshot-after} bytes (default 64 MB, at least the last snapshot's size).
 * With the H2 backend (file {@code --file}) every write command is committed to the file before its
 * reply and fsynced ({@link DurableCommits}). With either, an acknowledged write survives kill -9
 * and a crash of the machine. {@code --no-fsync} skips the fsync before replies (the file is synced
 * every 0.5 s instead): still safe against kill -9, cheaper where fsync is slow.
 *
 * <p>mongo-java-server announces wire version 8 (MongoDB 5.0) at most; PyMongo 4.20 refuses
 * anything below 9 (MongoDB 4.4). {@link Wire} announces MongoDB 4.4 / wire 9: the lowest that
 * current drivers accept, so they do not expect newer server features.
 */
public final class Main {

    /** The version this server announces in hello/isMaster and buildInfo. */
    enum Wire implements MongoVersion {
        MONGO_4_4(List.of(4, 4, 0), 9);

        private final List<Integer> versionArray;
        private final int wireVersion;

        Wire(List<Integer> versionArray, int wireVersion) {
            this.versionArray = versionArray;
            this.wireVersion = wireVersion;
        }

        @Override
        public List<Integer> getVersionArray() {
            return versionArray;
        }

        @Override
        public int getWireVersion() {
            return wireVersion;
        }
    }

    public static void main(String[] args) throws Exception {
        String host = "127.0.0.1";
        int port = 27017;
        String backendName = "journal";
        String file = null;
        String dir = null;
        long snapshotAfter = 64L << 20;
        boolean fsync = true;
        for (int i = 0; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--host" -> { host = value; i++; }
                case "--port" -> { port = Integer.parseInt(value); i++; }
                case "--backend" -> { backendName = value; i++; }
                case "--file" -> { file = value; i++; }
                case "--dir" -> { dir = value; i++; }
                case "--snapshot-after" -> { snapshotAfter = Long.parseLong(value); i++; }
                case "--no-fsync" -> fsync = false;
                default -> {
                    System.err.println("usage: mongo-wire [--host H] [--port P] [--backend journal|h2|memory] [--dir D] [--snapshot-after BYTES] [--file F] [--no-fsync]");
                    System.exit(2);
                }
            }
        }

        MongoBackend backend;
        if (backendName.equals("journal")) {
            if (dir == null) {
                System.err.println("mongo-wire: --backend journal needs --dir");
                System.exit(2);
            }
            backend = new JournaledBackend(Path.of(dir), fsync, snapshotAfter);
        } else if (backendName.equals("memory")) {
            backend = new IdLookupBackends.Memory();
        } else if (backendName.equals("h2")) {
            if (file != null) {
                Path parent = Path.of(file).toAbsolutePath().getParent();
                if (parent != null) {
                    Files.createDirectories(parent);
                }
            }
            backend = new IdLookupBackends.H2(DurableCommits.open(file, fsync), fsync);
        } else {
            throw new IllegalArgumentException("unknown backend: " + backendName);
        }
        backend.version(Wire.MONGO_4_4);

        MongoServer server = new MongoServer(backend);
        // A command waits on its event-loop thread for the journal's fsync; with more threads than
        // netty's default (2 per core) more concurrent writers can share one fsync (group commit).
        server.bind(new InetSocketAddress(host, port), 1, backendName.equals("journal") ? 32 : 2 * Runtime.getRuntime().availableProcessors());
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // shutdown() closes the backend too: the H2 store is committed and closed, the journal flushed.
            server.shutdown();
        }, "mongo-wire-shutdown"));
        String where = backendName.equals("journal") ? dir : backendName.equals("h2") ? file : null;
        System.out.printf("mongo-wire: listening on %s:%d, backend %s%s, wire version %d%n",
            host, port, backendName,
            where == null ? "" : " (" + where + ", written before each write is acknowledged" + (fsync ? " and fsynced" : "") + ")",
            Wire.MONGO_4_4.getWireVersion());
        Thread.currentThread().join();
    }
}

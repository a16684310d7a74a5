package local.mongowire;

import java.util.List;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.h2.H2Database;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;
import io.netty.channel.Channel;
import org.h2.mvstore.MVMap;
import org.h2.mvstore.MVStore;

/**
 * The two backends, with their _id indexes wrapped in {@link IdLookupIndex} and their non-unique
 * indexes served from memory ({@link SecondaryIndex}); their collections count how queries are
 * answered ({@link CountedCollections}, read by {@code mongoWireIndexStats}); the H2 one commits
 * every write before replying ({@link DurableCommits}).
 */
final class IdLookupBackends {
    private IdLookupBackends() {}

    static final class H2 extends H2Backend {
        private final DurableCommits commits;

        /** STORE opened by {@link DurableCommits#open}; FSYNC: fsync each commit (else every 0.5 s). */
        H2(MVStore store, boolean fsync) {
            super(store);
            this.commits = new DurableCommits(store, fsync);
        }

        // Every command arrives here: OP_MSG through handleMessage, legacy OP_QUERY on $cmd directly.
        // The wire handler sends the reply only after this returns.
        @Override public Document handleCommand(Channel channel, String database, String command, Document query) {
            if (command.equalsIgnoreCase(IndexStats.COMMAND)) {
                return IndexStats.command(database, query);
            }
            if (!DurableCommits.isWrite(command, query)) {
                return super.handleCommand(channel, database, command, query);
            }
            return commits.write(() -> super.handleCommand(channel, database, command, query));
        }

        @Override public void close() {
            commits.close();
            super.close();  // closes the MVStore
        }

        @Override protected MongoDatabase openOrCreateDatabase(String name) {
            return new H2Db(name, getMvStore(), getCursorRegistry());
        }

        // An inner class: openOrCreateCollection runs from H2Database's constructor, before H2Db's own
        // fields are set, and reaches the store through the enclosing backend (set before super()).
        final class H2Db extends H2Database {
            H2Db(String name, MVStore store, CursorRegistry cursors) { super(name, store, cursors); }

            // As H2Database.openOrCreateCollection (1.47.0: the same map names), with a counting collection.
            @Override protected MongoCollection<Object> openOrCreateCollection(String name, CollectionOptions options) {
                String namespace = getFullCollectionNamespace(name);
                MVMap<Object, Document> data = getMvStore().openMap("databases." + namespace);
                MVMap<String, Object> meta = getMvStore().openMap("meta." + namespace);
                return new CountedCollections.H2(this, name, options, data, meta, cursorRegistry);
            }

            @Override protected Index<Object> openOrCreateUniqueIndex(String collection, String name, List<IndexKey> keys, boolean sparse) {
                Index<Object> index = super.openOrCreateUniqueIndex(collection, name, keys, sparse);
                return IdLookupIndex.isIdIndex(keys) ? new IdLookupIndex<>(index) : index;
            }

            // Non-unique indexes: kept in memory, rebuilt from the collection at start (the library ignores them).
            private SecondaryIndex.Siblings<Object> secondaryIndexes;  // no initializer: see openOrCreateSecondaryIndex

            @Override protected Index<Object> openOrCreateSecondaryIndex(String collection, String name, List<IndexKey> keys, boolean sparse) {
                // Called from the superclass constructor too (indexes of a stored database), before field initializers run.
                if (secondaryIndexes == null) {
                    secondaryIndexes = new SecondaryIndex.Siblings<>();
                }
                return secondaryIndexes.open(collection, name, keys, sparse);
            }
        }
    }

    static final class Memory extends MemoryBackend {
        @Override public MemoryDatabase openOrCreateDatabase(String name) {
            return new MemoryDb(name, getCursorRegistry());
        }

        @Override public Document handleCommand(Channel channel, String database, String command, Document query) {
            if (command.equalsIgnoreCase(IndexStats.COMMAND)) {
                return IndexStats.command(database, query);
            }
            return super.handleCommand(channel, database, command, query);
        }
    }

    // Not final: JournaledBackend.Db extends it, so its collections get the same indexes.
    static class MemoryDb extends MemoryDatabase {
        MemoryDb(String name, CursorRegistry cursors) { super(name, cursors); }

        @Override protected MemoryCollection openOrCreateCollection(String name, CollectionOptions options) {
            return new CountedCollections.Memory(this, name, options, cursorRegistry);
        }

        @Override protected Index<Integer> openOrCreateUniqueIndex(String collection, String name, List<IndexKey> keys, boolean sparse) {
            Index<Integer> index = super.openOrCreateUniqueIndex(collection, name, keys, sparse);
            return IdLookupIndex.isIdIndex(keys) ? new IdLookupIndex<>(index) : index;
        }

        // Non-unique indexes: kept in memory (the library ignores them).
        private SecondaryIndex.Siblings<Integer> secondaryIndexes;  // no initializer: see openOrCreateSecondaryIndex

        @Override protected Index<Integer> openOrCreateSecondaryIndex(String collection, String name, List<IndexKey> keys, boolean sparse) {
            // Called from the superclass constructor too (indexes of a stored database), before field initializers run.
            if (secondaryIndexes == null) {
                secondaryIndexes = new SecondaryIndex.Siblings<>();
            }
            return secondaryIndexes.open(collection, name, keys, sparse);
        }
    }
}

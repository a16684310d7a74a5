package local.mongowire;

import java.util.Collection;
import java.util.regex.Pattern;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.bson.BsonRegularExpression;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.KeyConstraintError;

/**
 * The _id index, also serving filters that name one _id (or {@code _id: {$in: [...]}}) next to
 * other conditions.
 *
 * <p>mongo-java-server answers a filter from an index only when the filter's keys are exactly the
 * index's keys: {@code {_id: x, version: 3}} scans the whole collection. MongoDB itself looks the
 * document up by _id and then checks the rest; so does this wrapper (the collection applies the
 * whole filter to the positions it returns).
 */
final class IdLookupIndex<P> extends Index<P> {
    private final Index<P> delegate;

    IdLookupIndex(Index<P> delegate) {
        super(delegate.getName(), delegate.getKeys(), false);
        this.delegate = delegate;
    }

    static boolean isIdIndex(java.util.List<de.bwaldvogel.mongo.backend.IndexKey> keys) {
        return keys.size() == 1 && keys.get(0).getKey().equals("_id");
    }

    private static boolean plainId(Document query) {
        Object id = query.get("_id");
        return id != null && !(id instanceof Document) && !(id instanceof Pattern) && !(id instanceof Collection);
    }

    /** {@code _id: {$in: [plain ids]}}: the library's unique index looks each one up (a relay batching by ids). */
    private static boolean idIn(Document query) {
        return query.get("_id") instanceof Document condition && condition.size() == 1
            && condition.get("$in") instanceof Collection<?> ids
            && ids.stream().allMatch(id -> id != null && !(id instanceof Document) && !(id instanceof Pattern)
                && !(id instanceof Collection) && !BsonRegularExpression.isRegularExpression(id));
    }

    @Override public boolean canHandle(Document query) {
        return delegate.canHandle(query) || (query.size() > 1 && (plainId(query) || idIn(query)));
    }

    @Override public Iterable<P> getPositions(Document query) {
        if (delegate.canHandle(query)) {
            return delegate.getPositions(query);
        }
        return delegate.getPositions(new Document("_id", query.get("_id")));
    }

    @Override public P getPosition(Document document) { return delegate.getPosition(document); }
    @Override public void checkAdd(Document document, MongoCollection<P> collection) { delegate.checkAdd(document, collection); }
    @Override public void add(Document document, P position, MongoCollection<P> collection) { delegate.add(document, position, collection); }
    @Override public P remove(Document document) { return delegate.remove(document); }
    @Override public long getCount() { return delegate.getCount(); }
    @Override public boolean isEmpty() { return delegate.isEmpty(); }
    @Override public long getDataSize() { return delegate.getDataSize(); }
    @Override public void checkUpdate(Document oldDocument, Document newDocument, MongoCollection<P> collection) { delegate.checkUpdate(oldDocument, newDocument, collection); }
    @Override public void updateInPlace(Document oldDocument, Document newDocument, P position, MongoCollection<P> collection) throws KeyConstraintError { delegate.updateInPlace(oldDocument, newDocument, position, collection); }
    @Override public void drop() { delegate.drop(); }
    @Override public boolean isUnique() { return delegate.isUnique(); }
}

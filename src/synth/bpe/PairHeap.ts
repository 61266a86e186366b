/**
 * Binary max-heap of (count, pair key) entries for BPE training.
 * Ordered by count, then by the smaller key, so ties always resolve the same way.
 * Entries may be stale; the trainer re-checks counts when popping (lazy deletion).
 */
export class PairHeap {
    private readonly counts: number[] = [];
    private readonly keys: number[] = [];

    public get size(): number {
        return this.counts.length;
    }

    public push(count: number, key: number) {
        const {counts, keys} = this;
        let index = counts.length;
        counts.push(count);
        keys.push(key);

        while (index > 0) {
            const parent = (index - 1) >> 1;
            if (!this.before(count, key, counts[parent], keys[parent]))
                break;

            counts[index] = counts[parent];
            keys[index] = keys[parent];
            index = parent;
        }
        counts[index] = count;
        keys[index] = key;
    }

    /** Removes the top entry, returning it as [count, key], or `undefined` when empty. */
    public pop(): [count: number, key: number] | undefined {
        const {counts, keys} = this;
        if (counts.length === 0)
            return undefined;

        const top: [number, number] = [counts[0], keys[0]];
        const lastCount = counts.pop()!;
        const lastKey = keys.pop()!;
        const length = counts.length;
        if (length === 0)
            return top;

        let index = 0;
        for (;;) {
            const left = index * 2 + 1;
            if (left >= length)
                break;

            const right = left + 1;
            const child = (right < length && this.before(counts[right], keys[right], counts[left], keys[left]))
                ? right
                : left;
            if (!this.before(counts[child], keys[child], lastCount, lastKey))
                break;

            counts[index] = counts[child];
            keys[index] = keys[child];
            index = child;
        }
        counts[index] = lastCount;
        keys[index] = lastKey;

        return top;
    }

    private before(countA: number, keyA: number, countB: number, keyB: number) {
        return countA > countB || (countA === countB && keyA < keyB);
    }
}

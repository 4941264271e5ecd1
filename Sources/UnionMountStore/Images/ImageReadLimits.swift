/// Bounds on what reading an image may cost, against hostile or broken input.
public struct ImageReadLimits: Sendable, Hashable, Codable {
    /// The largest JSON document read (an index, a manifest, a config, `manifest.json`, `index.json`), in
    /// bytes; a descriptor that declares more, or a file that holds more, is refused before it is read whole.
    public var maximumJSONBytes: Int
    /// How many image indexes may be followed from `index.json` to a manifest (an index inside an index inside
    /// …); one more is refused, so a loop of indexes ends.
    public var maximumIndexDepth: Int
    /// The most members a `docker save` or `oci-archive` tar may have (its index is kept in memory).
    public var maximumArchiveMembers: Int

    /// Limits; the defaults are 4 MiB of JSON, 8 nested indexes and 100,000 archive members.
    public init(maximumJSONBytes: Int = 4 << 20, maximumIndexDepth: Int = 8, maximumArchiveMembers: Int = 100_000) {
        self.maximumJSONBytes = maximumJSONBytes
        self.maximumIndexDepth = maximumIndexDepth
        self.maximumArchiveMembers = maximumArchiveMembers
    }
}

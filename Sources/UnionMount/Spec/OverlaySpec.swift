import SystemPackage

/// What an overlay mount is made of: lower layers, optional data-only layers, an optional writable layer.
///
/// The layer order is the kernel's: `lowerDirectories[0]` is the top lower layer, the one whose files
/// win over all others. Without an upper directory the mount is read-only and needs at least two lower
/// layers.
///
///     let spec = OverlaySpec(
///         lowerDirectories: ["/layers/app", "/layers/base"],
///         upperDirectory: "/containers/c1/upper",
///         workDirectory: "/containers/c1/work")
///
/// A spec turns into option bytes for mount(2) with ``OverlaySpec/legacyOptionString(relativeTo:)`` and into a
/// ``MountPlan`` with ``Mounter/plan(_:at:flags:strategy:)``.
public struct OverlaySpec: Sendable, Hashable, Codable {
    /// The most layers one overlay can stack (`OVL_MAX_STACK`); lower and data-only layers count together.
    public static let maximumLayerCount = 500

    /// Read-only layers, top first.
    public var lowerDirectories: [FilePath]
    /// Data-only layers (Linux 6.5+): reachable only through metacopy redirects, never listed in the merged view.
    public var dataDirectories: [FilePath]
    /// The writable layer, or `nil` for a read-only overlay.
    public var upperDirectory: FilePath?
    /// The overlay's scratch directory; required with an upper directory, on the same mount as it.
    public var workDirectory: FilePath?
    /// Typed overlay options.
    public var options: OverlayOptions
    /// The source shown in the mount table (default `"overlay"`).
    public var source: String
    /// Owners of the lower and data-only layers mapped through idmapped mounts of them; nil: as on disk.
    public var idMapping: IDMapping?

    /// Creates a spec.
    ///
    /// - Parameters:
    ///   - lowerDirectories: read-only layers, top first.
    ///   - dataDirectories: data-only layers, after all lower layers.
    ///   - upperDirectory: the writable layer.
    ///   - workDirectory: the work directory, on the same mount as `upperDirectory`.
    ///   - options: overlay options.
    ///   - source: the source field of the mount table entry.
    ///   - idMapping: the id mapping of the lower and data-only layers.
    public init(
        lowerDirectories: [FilePath],
        dataDirectories: [FilePath] = [],
        upperDirectory: FilePath? = nil,
        workDirectory: FilePath? = nil,
        options: OverlayOptions = OverlayOptions(),
        source: String = "overlay",
        idMapping: IDMapping? = nil
    ) {
        self.lowerDirectories = lowerDirectories
        self.dataDirectories = dataDirectories
        self.upperDirectory = upperDirectory
        self.workDirectory = workDirectory
        self.options = options
        self.source = source
        self.idMapping = idMapping
    }

    /// Whether the overlay is writable (has an upper directory).
    public var isWritable: Bool { upperDirectory != nil }

    /// Every directory the spec names, lower layers first, then data layers, upper and work.
    public var allDirectories: [FilePath] {
        lowerDirectories + dataDirectories + [upperDirectory, workDirectory].compactMap { $0 }
    }

    private enum CodingKeys: String, CodingKey {
        case lowerDirectories, dataDirectories, upperDirectory, workDirectory, options, source, idMapping
    }

    /// Decodes a spec; paths are strings, or `{"base64": …}` for non-UTF-8 bytes.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        lowerDirectories = try container.decodePaths(forKey: .lowerDirectories)
        dataDirectories = try container.decodePaths(forKey: .dataDirectories)
        upperDirectory = try container.decodePathIfPresent(forKey: .upperDirectory)
        workDirectory = try container.decodePathIfPresent(forKey: .workDirectory)
        options = try container.decodeIfPresent(OverlayOptions.self, forKey: .options) ?? OverlayOptions()
        source = try container.decodeIfPresent(String.self, forKey: .source) ?? "overlay"
        idMapping = try container.decodeIfPresent(IDMapping.self, forKey: .idMapping)
    }

    /// Encodes a spec; paths are strings, or `{"base64": …}` for non-UTF-8 bytes.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(paths: lowerDirectories, forKey: .lowerDirectories)
        try container.encode(paths: dataDirectories, forKey: .dataDirectories)
        try container.encode(path: upperDirectory, forKey: .upperDirectory)
        try container.encode(path: workDirectory, forKey: .workDirectory)
        try container.encode(options, forKey: .options)
        try container.encode(source, forKey: .source)
        try container.encodeIfPresent(idMapping, forKey: .idMapping)
    }
}

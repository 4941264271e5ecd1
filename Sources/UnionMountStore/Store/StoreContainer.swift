import SystemPackage
import UnionMount

/// A container of a ``LayerStore``: its own writable layer stacked on a chain of layers.
public struct StoreContainer: Sendable, Hashable, Codable {
    /// The container's id.
    public var id: String
    /// The image layer it was created from; nil for a container on an empty image.
    public var image: String?
    /// Its init layer (`<id>-init`, on top of the image), nil when it has none.
    public var initLayer: String?
    /// The chain of layers its union stacks on, top first: its init layer, then the image's chain.
    public var layers: [String]
    /// How many times it is mounted and not yet unmounted (the store's reference count).
    public var mountCount: Int
    /// The writable layer (overlay's upper directory).
    public var upperDirectory: FilePath
    /// overlay's work directory.
    public var workDirectory: FilePath
    /// The mount point: the container's root filesystem while it is mounted.
    public var mergedDirectory: FilePath
    /// The id mapping its layers are mounted with (idmapped mounts, ``LayerStore/createContainer(_:image:idMapping:initialize:)``);
    /// nil: the layers' owners as on disk.
    public var idMapping: IDMapping?

    /// The top of the layer chain the container stacks on: its init layer, else its image.
    public var layer: String? { initLayer ?? image }

    /// Creates a description of a container.
    public init(
        id: String, image: String?, initLayer: String?, layers: [String], mountCount: Int, upperDirectory: FilePath,
        workDirectory: FilePath, mergedDirectory: FilePath, idMapping: IDMapping? = nil
    ) {
        self.id = id
        self.image = image
        self.initLayer = initLayer
        self.layers = layers
        self.mountCount = mountCount
        self.upperDirectory = upperDirectory
        self.workDirectory = workDirectory
        self.mergedDirectory = mergedDirectory
        self.idMapping = idMapping
    }

    private enum CodingKeys: String, CodingKey {
        case id, image, initLayer, layers, mountCount, upperDirectory, workDirectory, mergedDirectory, idMapping
    }

    /// Decodes the JSON form of ``encode(to:)``.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        image = try container.decodeIfPresent(String.self, forKey: .image)
        initLayer = try container.decodeIfPresent(String.self, forKey: .initLayer)
        layers = try container.decode([String].self, forKey: .layers)
        mountCount = try container.decode(Int.self, forKey: .mountCount)
        upperDirectory = try container.decodePath(forKey: .upperDirectory)
        workDirectory = try container.decodePath(forKey: .workDirectory)
        mergedDirectory = try container.decodePath(forKey: .mergedDirectory)
        idMapping = try container.decodeIfPresent(IDMapping.self, forKey: .idMapping)
    }

    /// Encodes every property; a path that is not UTF-8 as `{"base64": …}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encodeIfPresent(image, forKey: .image)
        try container.encodeIfPresent(initLayer, forKey: .initLayer)
        try container.encode(layers, forKey: .layers)
        try container.encode(mountCount, forKey: .mountCount)
        try container.encode(path: upperDirectory, forKey: .upperDirectory)
        try container.encode(path: workDirectory, forKey: .workDirectory)
        try container.encode(path: mergedDirectory, forKey: .mergedDirectory)
        try container.encodeIfPresent(idMapping, forKey: .idMapping)
    }
}

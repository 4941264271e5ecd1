import UnionMount

/// An image config (OCI `application/vnd.oci.image.config.v1+json`, Docker
/// `application/vnd.docker.container.image.v1+json`): the platform, the layers' diff ids, and how to run it.
public struct ImageConfig: Sendable, Hashable, Codable {
    /// The platform the image is built for (`architecture`, `os`, `variant`, `os.version`).
    public var platform: ImagePlatform
    /// `rootfs.diff_ids`: the digest of each layer's uncompressed tar, bottom first.
    public var diffIDs: [ImageDigest]
    /// `created`, as written (RFC 3339), when present.
    public var created: String?
    /// `author`, when present.
    public var author: String?
    /// The parts of the `config` section a runtime uses, typed; nil when the config has none.
    public var runtime: ImageRuntimeConfig?
    /// The whole `config` section as read (every field, typed or not), `.null` when absent.
    public var runtimeJSON: JSONValue

    /// Parses a config strictly (see ``JSONReader``).
    ///
    /// - Throws: `UnionMountError.Code.malformedInput` naming the file and field (malformed JSON, a repeated key,
    ///   no `architecture` or `os`, no `rootfs.diff_ids`, a diff id that is not `sha256:<hex>`, a typed runtime
    ///   field of the wrong type); `UnionMountError.Code.unsupported` for a `rootfs.type` other than `layers`.
    public init(parsing bytes: [UInt8], file: String) throws(UnionMountError) {
        let document = try JSONField.document(bytes, file: file)
        let object = try document.object()
        platform = try ImagePlatform(json: object)
        created = try object.optional("created")?.string()
        author = try object.optional("author")?.string()
        let rootfs = try object.required("rootfs").object()
        let type = try rootfs.required("type")
        guard try type.string() == "layers" else {
            throw type.unsupported("rootfs type \(try type.string().debugDescription) is not \"layers\"")
        }
        var diffIDs: [ImageDigest] = []
        let list = try rootfs.required("diff_ids")
        for element in list.value == .null ? [] : try list.elements() { diffIDs.append(try element.digest()) }
        self.diffIDs = diffIDs
        let runtimeField = try object.optional("config")
        runtime = try runtimeField.map { (field) throws(UnionMountError) in
            try ImageRuntimeConfig(json: try field.object())
        }
        runtimeJSON = runtimeField?.value ?? .null
    }
}

/// The fields of a config's `config` section that a runtime reads to start a container (Docker's and OCI's
/// names); everything else stays in ``ImageConfig/runtimeJSON``.
public struct ImageRuntimeConfig: Sendable, Hashable, Codable {
    /// `User`: `user`, `uid`, `user:group`, `uid:gid`.
    public var user: String?
    /// `Env`: `NAME=value` strings.
    public var environment: [String]?
    /// `Entrypoint`.
    public var entrypoint: [String]?
    /// `Cmd`.
    public var command: [String]?
    /// `WorkingDir`.
    public var workingDirectory: String?
    /// `Labels`.
    public var labels: [String: String]?
    /// `StopSignal`.
    public var stopSignal: String?
    /// The keys of `ExposedPorts` (`80/tcp`), sorted.
    public var exposedPorts: [String]?
    /// The keys of `Volumes` (paths), sorted.
    public var volumes: [String]?

    /// Reads the typed fields; each one, when present and not `null`, must have its JSON type.
    init(json object: JSONObjectField) throws(UnionMountError) {
        user = try object.optional("User")?.string()
        environment = try object.optional("Env")?.strings()
        entrypoint = try object.optional("Entrypoint")?.strings()
        command = try object.optional("Cmd")?.strings()
        workingDirectory = try object.optional("WorkingDir")?.string()
        labels = try object.optional("Labels")?.stringMap()
        stopSignal = try object.optional("StopSignal")?.string()
        exposedPorts = try object.optional("ExposedPorts")?.object().fields.map(\.key).sorted()
        volumes = try object.optional("Volumes")?.object().fields.map(\.key).sorted()
    }
}

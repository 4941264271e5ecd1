import UnionMount

/// The JSON documents an export writes (configs, manifests, indexes, `manifest.json`), built as ``JSONValue``s
/// and written with ``JSONValue/serialized``: no whitespace, members in a fixed order, so the same image gives the
/// same bytes and digests.
enum ImageDocuments {
    /// A config with its `rootfs.diff_ids` replaced by `diffIDs` (everything else as it was, in its order).
    ///
    /// - Throws: `UnionMountError.Code.malformedInput` naming `file` when the config is not a JSON object with a
    ///   `rootfs` object.
    static func config(_ bytes: [UInt8], replacingDiffIDs diffIDs: [ImageDigest], file: String)
        throws(UnionMountError) -> [UInt8]
    {
        let document = try JSONReader.parse(bytes, file: file)
        guard case .object(let rootfs)? = document.member("rootfs") else {
            throw UnionMountError.malformed("\(file): the config has no rootfs object", input: file)
        }
        let list = JSONValue.array(diffIDs.map { .string($0.description) })
        return document.setting("rootfs", .object(rootfs).setting("diff_ids", list)).serialized
    }

    /// A config with one more layer: `diffID` appended to `rootfs.diff_ids`, a `history` entry for it, and
    /// `created` set.
    static func config(
        _ bytes: [UInt8], appending diffID: ImageDigest, created: String, createdBy: String, file: String
    ) throws(UnionMountError) -> [UInt8] {
        let document = try JSONReader.parse(bytes, file: file)
        guard case .object(let rootfs)? = document.member("rootfs"),
            case .array(let diffIDs)? = JSONValue.object(rootfs).member("diff_ids") ?? .array([])
        else {
            throw UnionMountError.malformed("\(file): the config has no rootfs.diff_ids list", input: file)
        }
        var history: [JSONValue] = []
        if let existing = document.member("history") {
            guard case .array(let entries) = existing else {
                throw UnionMountError.malformed("\(file): the config's history is not a list", input: file)
            }
            history = entries
        }
        history.append(
            .object([
                .init(key: "created", value: .string(created)), .init(key: "created_by", value: .string(createdBy)),
            ]))
        let newRootfs = JSONValue.object(rootfs).setting("diff_ids", .array(diffIDs + [.string(diffID.description)]))
        return document.setting("created", .string(created)).setting("rootfs", newRootfs).setting(
            "history", .array(history)
        ).serialized
    }

    /// The config of an image of no layers yet, for `platform`.
    static func emptyConfig(platform: ImagePlatform) -> [UInt8] {
        var members: [JSONMember] = [
            .init(key: "architecture", value: .string(platform.architecture)),
            .init(key: "os", value: .string(platform.os)),
        ]
        if let variant = platform.variant { members.append(.init(key: "variant", value: .string(variant))) }
        members.append(.init(key: "config", value: .object([])))
        members.append(
            .init(
                key: "rootfs",
                value: .object([
                    .init(key: "type", value: .string("layers")), .init(key: "diff_ids", value: .array([])),
                ])))
        return JSONValue.object(members).serialized
    }

    /// An OCI image manifest.
    static func manifest(config: ImageDescriptor, layers: [ImageDescriptor]) -> [UInt8] {
        JSONValue.object([
            .init(key: "schemaVersion", value: .number("2")),
            .init(key: "mediaType", value: .string(ImageMediaType.ociManifest)),
            .init(key: "config", value: descriptor(config)),
            .init(key: "layers", value: .array(layers.map(descriptor))),
        ]).serialized
    }

    /// A descriptor object: `mediaType`, `digest`, `size`, then `annotations` and `platform` when given.
    static func descriptor(_ descriptor: ImageDescriptor) -> JSONValue {
        var members: [JSONMember] = [
            .init(key: "mediaType", value: .string(descriptor.mediaType)),
            .init(key: "digest", value: .string(descriptor.digest.description)),
            .init(key: "size", value: .number(String(descriptor.size))),
        ]
        if let annotations = descriptor.annotations, !annotations.isEmpty {
            let sorted = annotations.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            members.append(
                .init(key: "annotations", value: .object(sorted.map { .init(key: $0.key, value: .string($0.value)) })))
        }
        if let platform = descriptor.platform {
            var fields: [JSONMember] = [
                .init(key: "architecture", value: .string(platform.architecture)),
                .init(key: "os", value: .string(platform.os)),
            ]
            if let variant = platform.variant { fields.append(.init(key: "variant", value: .string(variant))) }
            members.append(.init(key: "platform", value: .object(fields)))
        }
        return .object(members)
    }

    /// The OCI media type of a layer blob of `compression`.
    static func layerMediaType(_ compression: LayerCompression) -> String {
        switch compression {
        case .none: "application/vnd.oci.image.layer.v1.tar"
        case .gzip: "application/vnd.oci.image.layer.v1.tar+gzip"
        case .zstd: "application/vnd.oci.image.layer.v1.tar+zstd"
        }
    }
}

extension JSONValue {
    /// The member `key` of an object; nil for another value or a missing key.
    func member(_ key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key.utf8.elementsEqual(key.utf8) }?.value
    }

    /// The object with its member `key` set to `value`: replaced in place, or appended.
    func setting(_ key: String, _ value: JSONValue) -> JSONValue {
        guard case .object(var members) = self else { return self }
        if let index = members.firstIndex(where: { $0.key.utf8.elementsEqual(key.utf8) }) {
            members[index].value = value
        } else {
            members.append(JSONMember(key: key, value: value))
        }
        return .object(members)
    }
}

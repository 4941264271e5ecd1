import ArgumentParser
import SystemPackage
import UnionMount
import UnionMountStore

/// `unionmount store layers`: every layer.
struct StoreLayers: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "layers", abstract: "List the layers.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try store.run(output) {
            try $0.layers()
        } text: { layers in
            layers.map { "\($0.id)  parent=\($0.parent ?? "-")  depth=\($0.depth)  \($0.directory)" }
        }
    }
}

/// `unionmount store create-layer`: a layer imported from a directory, or empty.
struct StoreCreateLayer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-layer", abstract: "Create a layer, importing a layer directory (--from) or empty.")

    @OptionGroup var store: StoreOptions
    @Option(name: .long, help: "The parent layer.")
    var parent: String?
    @Option(name: .long, help: ArgumentHelp("Import this layer directory (copied, never moved).", valueName: "dir"))
    var from: String?
    @Option(name: .long, help: "The whiteout format of --from: \(WhiteoutFormatArgument.help).")
    var format: WhiteoutFormatArgument = WhiteoutFormatArgument(argument: "aufs")!
    @OptionGroup var output: OutputOptions
    @Argument(help: "The new layer's id (random when omitted).")
    var id: String?

    func run() throws {
        try store.run(output) { store in
            if let from {
                return try store.importLayer(id, parent: parent, from: FilePath(from), format: format.format)
            }
            return try store.beginLayer(id, parent: parent).commit()
        } text: {
            [$0.id]
        }
    }
}

/// `unionmount store remove-layer`: remove a layer nothing uses.
struct StoreRemoveLayer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-layer", abstract: "Remove a layer that no layer, container or mount uses.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The layer's id.")
    var id: String

    func run() throws {
        try store.run(output) { store in
            try store.removeLayer(id)
            return ["removedLayer": id]
        } text: { _ in
            ["removed layer \(id)"]
        }
    }
}

/// `unionmount store changes`: what a container changed.
struct StoreChanges: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "changes", abstract: "List what a container added (A), modified (C) and deleted (D).")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id.")
    var id: String

    func run() throws {
        try store.run(output) {
            try $0.changes(container: id)
        } text: { changes in
            changes.map { change in
                let mark =
                    switch change.kind {
                    case .added: "A"
                    case .modified: "C"
                    case .deleted: "D"
                    }
                return "\(mark) /\(change.path)"
            }
        }
    }
}

/// `unionmount store export`: a container's changes as a layer directory.
struct StoreExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a container's changes as a layer directory.")

    @OptionGroup var store: StoreOptions
    @Option(name: .long, help: ArgumentHelp("The directory to create.", valueName: "dir"))
    var to: String
    @Option(name: .long, help: "The whiteout format to write: \(WhiteoutFormatArgument.help).")
    var format: WhiteoutFormatArgument = WhiteoutFormatArgument(argument: "aufs")!
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id.")
    var id: String

    func run() throws {
        try store.run(output) { store in
            try store.exportChanges(container: id, to: FilePath(to), format: format.format)
            return ["container": id, "directory": to, "format": format.format.argumentName]
        } text: { _ in
            [to]
        }
    }
}

/// `unionmount store commit`: a container's changes as a new layer on its image, or as a new image.
struct StoreCommit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commit",
        abstract: "Make a new layer of a container's changes, on top of its image (--as-image: a new image).")

    @OptionGroup var store: StoreOptions
    @Option(name: .customLong("as"), help: "The new layer's id (random when omitted).")
    var layerID: String?
    @Option(
        name: .customLong("as-image"),
        help: ArgumentHelp(
            "Record a new image (name[:tag]): the layer by its chain id, config and manifest.", valueName: "name"))
    var imageName: String?
    @Option(
        name: .long,
        help: "With --as-image: the image the container was created from (default: found by its top layer).")
    var base: String?
    @Flag(name: .long, help: "With --as-image: the layer's digest as a zstd tar (default gzip).")
    var zstd = false
    @Option(
        name: .customLong("clamp-times"),
        help: ArgumentHelp(
            "With --as-image: clamp the layer's times and set the config's created to this.", valueName: "seconds"))
    var clampTimes: Int64?
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id.")
    var id: String

    func validate() throws {
        if imageName != nil && layerID != nil { throw ValidationError("--as and --as-image exclude each other") }
        if imageName == nil && (base != nil || zstd || clampTimes != nil) {
            throw ValidationError("--base, --zstd and --clamp-times go with --as-image")
        }
    }

    func run() throws {
        if let imageName {
            let options = LayerExportOptions(compression: zstd ? .zstd : .gzip, clampTimes: clampTimes)
            return try store.run(output) {
                try $0.commit(container: id, asImage: imageName, base: base, options: options)
            } text: {
                ["\($0.name) \($0.configDigest) top layer \($0.topLayer ?? "-")"]
            }
        }
        try store.run(output) {
            try $0.commit(container: id, as: layerID)
        } text: {
            [$0.id]
        }
    }
}

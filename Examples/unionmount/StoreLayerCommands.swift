import ArgumentParser
import SystemPackage
import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

/// `unionmount store layers`: every layer.
struct StoreLayers: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "layers", abstract: "List the layers.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let store = try store.open()
        let layers = try reportingFailures { try store.layers() }
        if output.json { return try printJSON(layers) }
        for layer in layers {
            print("\(layer.id)  parent=\(layer.parent ?? "-")  depth=\(layer.depth)  \(layer.directory)")
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
        let store = try store.open()
        let layer = try reportingFailures { () throws -> StoreLayer in
            if let from {
                return try store.importLayer(id, parent: parent, from: FilePath(from), format: format.format)
            }
            return try store.beginLayer(id, parent: parent).commit()
        }
        if output.json { try printJSON(layer) } else { print(layer.id) }
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
        let store = try store.open()
        try reportingFailures { try store.removeLayer(id) }
        if output.json { try printJSON(["removedLayer": id]) } else { print("removed layer \(id)") }
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
        let store = try store.open()
        let changes = try reportingFailures { try store.changes(container: id) }
        if output.json { return try printJSON(changes) }
        for change in changes {
            let mark =
                switch change.kind {
                case .added: "A"
                case .modified: "C"
                case .deleted: "D"
                }
            print("\(mark) /\(change.path)")
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
        let store = try store.open()
        try reportingFailures { try store.exportChanges(container: id, to: FilePath(to), format: format.format) }
        if output.json {
            try printJSON(["container": id, "directory": to, "format": format.format.argumentName])
        } else {
            print(to)
        }
    }
}

/// `unionmount store commit`: a container's changes as a new layer on its image.
struct StoreCommit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commit", abstract: "Make a new layer of a container's changes, on top of its image.")

    @OptionGroup var store: StoreOptions
    @Option(name: .customLong("as"), help: "The new layer's id (random when omitted).")
    var layerID: String?
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id.")
    var id: String

    func run() throws {
        let store = try store.open()
        let layer = try reportingFailures { try store.commit(container: id, as: layerID) }
        if output.json { try printJSON(layer) } else { print(layer.id) }
    }
}

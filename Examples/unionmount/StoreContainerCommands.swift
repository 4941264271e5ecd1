import ArgumentParser
import SystemPackage
import UnionMount
import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// `unionmount store containers`: every container and its mount count.
struct StoreContainers: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "containers", abstract: "List the containers.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try store.run(output) {
            try $0.containers()
        } text: { containers in
            containers.map {
                var line = "\($0.id)  layer=\($0.layer ?? "-")  mounts=\($0.mountCount)  \($0.mergedDirectory)"
                if case .ranges(let uids, let gids)? = $0.idMapping {
                    line += "  uidmap=\(IDRange.text(uids))  gidmap=\(IDRange.text(gids))"
                }
                return line
            }
        }
    }
}

/// `unionmount store create-container`: a container on an image layer, with an optional init layer.
struct StoreCreateContainer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-container", abstract: "Create a container on an image (by name) or a layer.")

    @OptionGroup var store: StoreOptions
    @Option(
        name: .long,
        help:
            "An imported image's name (name[:tag]) or a layer id: the container stacks on its top layer (none: empty).")
    var image: String?
    @Option(
        name: .customLong("init-from"),
        help: ArgumentHelp("Give the container an init layer <id>-init copied from this directory.", valueName: "dir"))
    var initFrom: String?
    @OptionGroup var idMap: IDMapOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id (random when omitted).")
    var id: String?

    func run() throws {
        let initialize: ((FilePath) throws -> Void)? = initFrom.map { source in
            { directory in
                _ = directory.withPlatformString { rmdir($0) }
                try LayerTree.copy(from: FilePath(source), to: directory)
            }
        }
        try store.run(output) {
            try $0.createContainer(id, image: image, idMapping: try idMap.mapping(), initialize: initialize)
        } text: {
            [$0.id]
        }
    }
}

/// `unionmount store remove-container`: remove an unmounted container.
struct StoreRemoveContainer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-container", abstract: "Remove a container that is not mounted, and its init layer.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id.")
    var id: String

    func run() throws {
        try store.run(output) { store in
            try store.removeContainer(id)
            return ["removedContainer": id]
        } text: { _ in
            ["removed container \(id)"]
        }
    }
}

/// What `store mount` and `store unmount` print.
struct MountReport: Encodable {
    var container: String
    var merged: String
    var mounted: Bool
    var mountCount: Int
}

/// `unionmount store mount`: mount a container (or take one more reference) and print its root.
struct StoreMount: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount", abstract: "Mount a container (one more reference when mounted) and print its root.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id.")
    var id: String

    func run() throws {
        try store.run(output) { store in
            let merged = try store.mount(container: id)
            return MountReport(
                container: id, merged: merged.string, mounted: true, mountCount: try store.container(id).mountCount)
        } text: {
            [$0.merged]
        }
    }
}

/// `unionmount store unmount`: drop a reference; the last one unmounts.
struct StoreUnmount: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmount", abstract: "Drop one reference to a container's mount; the last one unmounts it.")

    @OptionGroup var store: StoreOptions
    @Flag(name: .long, help: "Detach (MNT_DETACH) when the mount stays busy.")
    var lazy = false
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id.")
    var id: String

    func run() throws {
        try store.run(output) { store in
            let unmounted = try store.unmount(container: id, lazy: lazy)
            let container = try store.container(id)
            return MountReport(
                container: id, merged: container.mergedDirectory.string, mounted: !unmounted,
                mountCount: container.mountCount)
        } text: { report in
            [report.mounted ? "\(id) still has \(report.mountCount) reference(s)" : "unmounted \(id)"]
        }
    }
}

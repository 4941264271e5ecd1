import ArgumentParser
import SystemPackage
import UnionMount
import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// `unionmount store import`: an image from an OCI layout, a docker save archive or an oci-archive.
struct StoreImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import an image: an OCI layout, a docker save archive or an oci-archive.",
        discussion: """
            Each layer not yet in the store (by chain id) is applied from its blob, its digest, size and diff id \
            checked on the way; layers already stored are reused. REF is a tag (or a docker archive's RepoTags \
            entry) or a manifest digest sha256:<hex>; without it the only image (or the one for --platform). The \
            path and REF are split at the first ':' unless the whole argument names an existing file (skopeo's \
            rule). Progress (bytes and layers done) goes to stderr when it is a terminal, or with --progress.
            """)

    @OptionGroup var store: StoreOptions
    @Option(
        name: .customLong("oci-layout"), help: ArgumentHelp("An OCI image layout directory.", valueName: "dir[:ref]"))
    var ociLayout: String?
    @Option(
        name: .customLong("docker-archive"),
        help: ArgumentHelp("A docker save archive (a tar).", valueName: "file[:ref]"))
    var dockerArchive: String?
    @Option(
        name: .customLong("oci-archive"), help: ArgumentHelp("An OCI layout in a tar.", valueName: "file[:ref]"))
    var ociArchive: String?
    @Option(name: .long, help: "The name to record the image as (default: the source's own name).")
    var name: String?
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The platform an image index is followed to (default: this machine).",
            valueName: "os/arch[/variant]"))
    var platform: String?
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Who owns the files: archive (the layers' uids and gids, mapped by the user namespace; an id it does not "
                + "map is refused) or caller (no chown: everything the importing user's, Podman's "
                + "ignore_chown_errors). Default: archive as root (in the namespace), else caller.",
            valueName: "archive|caller"))
    var ownership: String?
    @Flag(name: .long, help: "Report progress on stderr even when it is not a terminal.")
    var progress = false
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let ownership, !["archive", "caller"].contains(ownership) {
            throw ValidationError("--ownership is archive or caller, not \(ownership.debugDescription)")
        }
        let given = [ociLayout, dockerArchive, ociArchive].compactMap { $0 }
        guard given.count == 1 else {
            throw ValidationError("give exactly one of --oci-layout, --docker-archive, --oci-archive")
        }
    }

    /// `path[:ref]`, split at the first ':' unless the whole argument exists.
    static func split(_ argument: String) -> (FilePath, String?) {
        var info = stat()
        if lstat(argument, &info) == 0 { return (FilePath(argument), nil) }
        guard let colon = argument.firstIndex(of: ":") else { return (FilePath(argument), nil) }
        let reference = String(argument[argument.index(after: colon)...])
        return (FilePath(String(argument[..<colon])), reference.isEmpty ? nil : reference)
    }

    func source() -> ImageSource {
        if let ociLayout {
            let (path, reference) = Self.split(ociLayout)
            return .ociLayout(path, reference: reference)
        }
        if let dockerArchive {
            let (path, reference) = Self.split(dockerArchive)
            return .dockerArchive(path, reference: reference)
        }
        let (path, reference) = Self.split(ociArchive ?? "")
        return .ociArchive(path, reference: reference)
    }

    func run() throws {
        var options = ImageImportOptions()
        if let ownership { options.ownership = ownership == "caller" ? .caller : .archive }
        if let platform {
            options.platform = try reportingFailures { try ImagePlatform(parsing: platform, input: "--platform") }
        }
        let terminal = isatty(2) == 1
        let reporter = ProgressLine(enabled: progress || terminal, terminal: terminal)
        defer { reporter.finish() }
        try store.run(output) { store in
            try store.importImage(from: source(), name: name, options: options) { reporter.show($0) }
        } text: { imported in
            ["imported \(imported.image.name)"]
                + imported.layers.map { layer in
                    "\(layer.outcome.rawValue)  \(layer.layerID)  diff \(layer.diffID)"
                        + (layer.outcome == .applied ? "  \(layer.bytesRead) bytes, \(layer.entries) entries" : "")
                }
        }
    }
}

/// Progress lines on stderr: one rewritten line on a terminal, else one line per report.
final class ProgressLine {
    let enabled: Bool
    let terminal: Bool
    var shown = false

    init(enabled: Bool, terminal: Bool) {
        self.enabled = enabled
        self.terminal = terminal
    }

    func show(_ progress: ImageImportProgress) {
        guard enabled else { return }
        let megabytes = { (bytes: Int64) -> String in
            let tenths = bytes * 10 / 1_048_576
            return "\(tenths / 10).\(tenths % 10)"
        }
        let line =
            "\(progress.image): \(progress.layersDone)/\(progress.layerCount) layers, "
            + "\(megabytes(progress.bytesRead)) of \(megabytes(progress.bytesTotal)) MiB"
        write(terminal ? "\r\u{1B}[K" + line : line + "\n")
        shown = true
    }

    func finish() {
        if enabled && terminal && shown { write("\n") }
    }

    private func write(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

/// `unionmount store images`: every image.
struct StoreImages: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "images", abstract: "List the images.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try store.run(output) {
            try $0.images()
        } text: { images in
            images.map {
                "\($0.name)  config=\($0.configDigest)  layers=\($0.layers.count)  top=\($0.topLayer ?? "-")  "
                    + $0.platform
            }
        }
    }
}

/// `unionmount store remove-image`: remove an image record and the layers only it used.
struct StoreRemoveImage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-image", abstract: "Remove an image, and the layers that nothing else uses.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The image's name (name[:tag]).")
    var name: String

    func run() throws {
        try store.run(output) { store in
            try store.removeImage(named: name)
            return ["removedImage": name]
        } text: { _ in
            ["removed image \(name)"]
        }
    }
}

/// `unionmount store prune`: remove image layers nothing uses.
struct StorePrune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove image layers that no image, container, mount or layer uses (a killed import's).",
        discussion: "Layers made by create-layer or commit are never pruned; remove them with remove-layer.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try store.run(output) { store in
            ["removedLayers": try store.prune()]
        } text: { result in
            (result["removedLayers"] ?? []).map { "removed layer \($0)" }
        }
    }
}

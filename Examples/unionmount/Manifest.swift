import ArgumentParser
import SystemPackage
import UnionMount
import UnionMountStore

extension UnionMountCommand {
    /// `unionmount manifest`: describe a tree (a layer, a merged view) for comparison.
    struct Manifest: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe every entry of a directory tree: type, mode, owner, contents digest, xattrs, links.")

        @Flag(name: .customLong("no-times"), help: "Leave out modification times.")
        var noTimes = false
        @Flag(name: .customLong("no-hard-links"), help: "Leave out which names are hard links of each other.")
        var noHardLinks = false
        @Option(name: .customLong("ignore-xattr-prefix"), help: "Leave out xattrs with this prefix (repeatable).")
        var ignoredPrefixes: [String] = []
        @OptionGroup var output: OutputOptions
        @Argument(help: "The directory.")
        var directory: String

        func run() throws {
            let options = TreeManifest.Options(
                includeModificationTimes: !noTimes, ignoredXattrPrefixes: ignoredPrefixes,
                includeHardLinks: !noHardLinks)
            let manifest = try reportingFailures { try TreeManifest.read(FilePath(directory), options: options) }
            if output.json { return try printJSON(manifest) }
            for entry in manifest.entries {
                let mode = String(entry.mode, radix: 8)
                print("\(entry.type.rawValue) \(mode) \(entry.uid):\(entry.gid) \(entry.digest ?? "-") \(entry.path)")
            }
        }
    }
}

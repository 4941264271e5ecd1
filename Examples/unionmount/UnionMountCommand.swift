import ArgumentParser
import Foundation
import SystemPackage
import UnionMount

/// `unionmount`: build, mount, inspect and tear down union filesystems from the shell.
///
/// Exit status: 0 on success, 1 when an operation fails (the library's ``UnionMountError`` on stderr), 64
/// (`EX_USAGE`, ArgumentParser's ``ExitCode/validationFailure``) for bad usage.
@main
struct UnionMountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unionmount",
        abstract: "Build, mount, inspect and tear down union filesystems (overlayfs, aufs).",
        discussion: """
            Every subcommand prints text for people, or JSON for scripts with --json (sorted keys, slashes not \
            escaped). Errors go to stderr; the exit status is 1 for a failed operation and 64 for bad usage.
            """,
        subcommands: [
            Demo.self, Mount.self, Unmount.self, Holders.self, List.self, Inspect.self, Tree.self, Probe.self,
            Store.self,
            Manifest.self,
        ]
    )
}

/// Options every subcommand that prints shares.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON (sorted keys) instead of text.")
    var json = false
}

/// Where mount tables and aufs' sysfs files are read (real files by default, fixtures in tests).
struct SourceOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("Read this mountinfo file instead of the live mount table.", valueName: "file"))
    var mountinfo: String?
    @Option(name: .customLong("aufs-sysfs"), help: ArgumentHelp("Read aufs' sysfs tree here.", valueName: "dir"))
    var aufsSysfs: String = "/sys/fs/aufs"

    /// The live table (statmount or mountinfo, as the library chooses), or the given file.
    var table: MountTable.Source { mountinfo.map { .file(FilePath($0)) } ?? .automatic }
    var sysfs: AufsSysfs { AufsSysfs(root: FilePath(aufsSysfs)) }
}

/// Prints a value as JSON with sorted keys and unescaped slashes.
func printJSON<Value: Encodable>(_ value: Value) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
    let data = try encoder.encode(value)
    print(String(decoding: data, as: UTF8.self))
}

/// Turns a library error into a failed exit (1) with the error's text on stderr.
func failing(_ error: UnionMountError) -> ExitCode {
    FileHandle.standardError.write(Data("unionmount: \(error)\n".utf8))
    return ExitCode(1)
}

/// Runs `body`, turning a ``UnionMountError`` it throws into ``failing(_:)``'s exit 1.
func reportingFailures<Result>(_ body: () throws -> Result) throws -> Result {
    do {
        return try body()
    } catch let error as UnionMountError {
        throw failing(error)
    }
}

/// A report as text: one header line, then one line per branch, the work directory and the options.
func printReport(_ report: UnionMountReport) {
    let mode = report.readOnly ? "ro" : "rw"
    print("\(report.mountPoint)  \(report.fsType)  source=\(report.source)  \(mode)  id=\(report.mountID)")
    for branch in report.branches {
        var line = "  \(branch.index)  \(branch.role.rawValue.padding(5))  "
        line += ([branch.permission.rawValue] + branch.attributes).joined(separator: "+").padding(6)
        line += "  \(branch.path)"
        if let id = branch.id { line += "  (brid \(id))" }
        if !branch.exists { line += "  [missing]" }
        switch branch.idMapping {
        case .ranges(let uids, let gids)?:
            line +=
                "  idmapped uid \(IDRange.text(uids)) gid \(IDRange.text(gids))"
        case .userNamespace(let path)?: line += "  idmapped by \(path)"
        case nil: if branch.isIDMapped { line += "  idmapped" }
        }
        print(line)
    }
    if let workdir = report.workdir { print("  workdir   \(workdir)") }
    if let aufs = report.aufs {
        print("  si=\(aufs.si)" + (aufs.xinoPath.map { "  xino=\($0)" } ?? ""))
    }
    if !report.options.isEmpty { print("  options   \(report.options.joined(separator: ","))") }
}

extension String {
    /// The string padded with spaces to `width` characters.
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}

// union-mounts: the branch state of every union mount on the host (overlay, aufs, fuse-overlayfs).
//
//     union-mounts [--json] [--mountinfo FILE]
//
// Text: one line per mount, then one per branch, top first. JSON: an array of mount objects (the
// `UnionMountReport` encoding, the same as `unionmount list --json`).
import Foundation
import SystemPackage
import UnionMount

var arguments = Array(CommandLine.arguments.dropFirst())
let json = arguments.contains("--json")
arguments.removeAll { $0 == "--json" }
var source = MountTable.Source.automatic
if arguments.count == 2, arguments[0] == "--mountinfo" {
    source = .file(FilePath(arguments[1]))
} else if !arguments.isEmpty {
    FileHandle.standardError.write(Data("usage: union-mounts [--json] [--mountinfo FILE]\n".utf8))
    exit(64)
}

do {
    // One pass over the mount table; aufs branches come from /sys/fs/aufs/si_<id>/.
    let reports = try MountTable.reports(source: source)
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        print(String(decoding: try encoder.encode(reports), as: UTF8.self))
    } else {
        for report in reports {
            print("\(report.fsType) \(report.mountPoint) (source \(report.source), \(report.readOnly ? "ro" : "rw"))")
            for branch in report.branches {
                let permission = ([branch.permission.rawValue] + branch.attributes).joined(separator: "+")
                let missing = branch.exists ? "" : "  [missing]"
                print("  \(branch.index) \(branch.role.rawValue) \(permission) \(branch.path)\(missing)")
            }
        }
    }
} catch {
    FileHandle.standardError.write(Data("union-mounts: \(error)\n".utf8))
    exit(1)
}

import Foundation
import SystemPackage
import Testing

@testable import UnionMount

/// Lookups by path on a captured table (`Source.file`) compare paths lexically with the file's mount points.
@Suite struct MountTableFileSourceTests {
    static let table = """
        20 1 0:20 / / rw - ext4 /dev/root rw
        30 20 0:30 / /var/lib/c rw - tmpfs tmpfs rw
        40 30 0:40 / /var/lib/c/merged rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
        41 40 0:41 / /var/lib/c/merged rw - tmpfs top rw

        """

    /// The table written to a fresh file; remove `scratch.path` when done.
    static func tableFile() throws -> (scratch: Scratch, file: FilePath) {
        let scratch = try Scratch("filesource")
        let file = scratch.path.appending("mountinfo")
        try writeFile(file, table)
        return (scratch, file)
    }

    @Test func containingFindsTheDeepestMountPointAboveThePath() throws {
        let (scratch, file) = try Self.tableFile()
        defer { removeTree(scratch.path) }
        do {
            let holder = try MountTable.entry(containing: "/var/lib/c/merged/etc/passwd", source: .file(file))
            #expect(holder.mountID == 41)
            #expect(try MountTable.entry(containing: "/var/lib/c/x", source: .file(file)).mountID == 30)
            #expect(try MountTable.entry(containing: "/etc", source: .file(file)).mountID == 20)
        }
    }

    @Test func atFindsTheTopmostMountThere() throws {
        let (scratch, file) = try Self.tableFile()
        defer { removeTree(scratch.path) }
        do {
            #expect(try MountTable.entry(at: "/var/lib/c/merged", source: .file(file))?.mountID == 41)
            #expect(try MountTable.entry(at: "/var/lib/c/merged/etc", source: .file(file)) == nil)
        }
    }
}

import SystemPackage
import UnionMount

extension MergedView {
    /// The merged view of a mounted union, from its report: the branches without the data-only layers, in the
    /// whiteout format of `UnionMountReport.whiteoutFormat`.
    ///
    /// - Throws: `UnionMountError.Code.unsupported` when the report shows no branches (fuse-overlayfs), is
    ///   of an unknown type, or shows a branch as a relative path (mounted with relative layer paths, which the
    ///   kernel resolved against a working directory that is not known here); otherwise as
    ///   ``entries(branches:format:fuseOverlayfs:)``.
    public static func entries(of report: UnionMountReport) throws(UnionMountError) -> [MergedEntry] {
        let branches = report.branches.filter { $0.role != .data }.map(\.path)
        let mount = "the \(report.fsType) mount at \(report.mountPoint.readable)"
        guard let format = report.whiteoutFormat, !branches.isEmpty else {
            throw UnionMountError(
                code: .unsupported, message: "\(mount) shows no branches to merge", input: report.mountPoint.readable)
        }
        if let relative = branches.firstIndex(where: { !$0.isAbsolute }) {
            throw UnionMountError(
                code: .unsupported,
                message: "\(mount) shows branch \(relative) as the relative path \(branches[relative].readable)",
                input: report.mountPoint.readable)
        }
        return try entries(branches: branches, format: format)
    }
}

extension UnionMountReport {
    /// The whiteout format of the mount's branches: ``WhiteoutFormat/aufs`` for aufs; for overlay and
    /// fuse-overlayfs, ``WhiteoutFormat/overlayUser`` when the options show `userxattr`, else
    /// ``WhiteoutFormat/overlayTrusted``; nil for any other type.
    public var whiteoutFormat: WhiteoutFormat? {
        switch fsType {
        case "aufs": .aufs
        case "overlay", "fuse.fuse-overlayfs": options.contains("userxattr") ? .overlayUser : .overlayTrusted
        default: nil
        }
    }
}

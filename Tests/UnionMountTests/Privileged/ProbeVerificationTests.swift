import CUnionMountShim
import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// Each answer of ``KernelFeatures`` against what this kernel does when asked for real: the feature is used
    /// in a mount made here with raw system calls (not through the planner), and the mount works exactly when the
    /// probe says it would. A wrong probe fails here, on whatever kernel the suite runs (the kernel matrix boots
    /// older ones).
    @Suite struct ProbeVerification {
        let features = KernelFeatures.probe()

        /// Two lower layers and a mount point.
        func layers(_ tag: String) throws -> (scratch: Scratch, lowers: [FilePath], target: FilePath) {
            let scratch = try Scratch("probe-\(tag)")
            let lowers = try [scratch.directory("a"), scratch.directory("b")]
            try writeFile(lowers[0].appending("x"), "a")
            return (scratch, lowers, try scratch.directory("m"))
        }

        /// Builds an overlay context with `configure`, creates it and mounts it at `target`; whether every call
        /// succeeded. Unmounts again.
        func newMountAPIMount(at target: FilePath, _ configure: (CInt) -> Bool) -> Bool {
            let context = CUnionMount_fsopen("overlay", CUnionMount_FSOPEN_CLOEXEC)
            guard context >= 0 else { return false }
            defer { close(context) }
            guard CUnionMount_fsconfig(context, CUnionMount_FSCONFIG_SET_STRING, "source", "probe", 0) == 0,
                configure(context),
                CUnionMount_fsconfig(context, CUnionMount_FSCONFIG_CMD_CREATE, nil, nil, 0) == 0
            else { return false }
            let mount = CUnionMount_fsmount(context, CUnionMount_FSMOUNT_CLOEXEC, 0)
            guard mount >= 0 else { return false }
            let moved = CUnionMount_move_mount(mount, "", AT_FDCWD, target.string, CUnionMount_MOVE_MOUNT_F_EMPTY_PATH)
            close(mount)  // an open mount fd keeps the mount busy
            guard moved == 0 else { return false }
            #expect(umount2(target.string, 0) == 0)
            return true
        }

        /// mount(2) of an overlay with `data`; whether it worked. Unmounts again.
        func legacyMount(at target: FilePath, _ data: String) -> Bool {
            guard mount("probe", target.string, "overlay", 0, data) == 0 else { return false }
            #expect(umount2(target.string, 0) == 0)
            return true
        }

        @Test("overlay, the new mount API, lowerdir+ and fd layers: as probed")
        func newMountAPIFeatures() throws {
            let (scratch, lowers, target) = try layers("api")
            defer { withExtendedLifetime(scratch) {} }
            #expect(features.overlay == legacyMount(at: target, "lowerdir=\(lowers[0].string):\(lowers[1].string)"))
            let context = CUnionMount_fsopen("overlay", CUnionMount_FSOPEN_CLOEXEC)
            if context >= 0 { close(context) }
            #expect(features.newMountAPI == (context >= 0))
            let appended = newMountAPIMount(at: target) { context in
                lowers.allSatisfy {
                    CUnionMount_fsconfig(context, CUnionMount_FSCONFIG_SET_STRING, "lowerdir+", $0.string, 0) == 0
                }
            }
            #expect(features.appendLowerDirectory == appended)
            let byDescriptor = newMountAPIMount(at: target) { context in
                lowers.allSatisfy { layer in
                    let fd = open(layer.string, CUnionMount_O_PATH | O_DIRECTORY | O_CLOEXEC)
                    defer { close(fd) }
                    return fd >= 0
                        && CUnionMount_fsconfig(context, CUnionMount_FSCONFIG_SET_FD, "lowerdir+", nil, fd) == 0
                }
            }
            #expect(features.layerFileDescriptors == byDescriptor)
            // Native parameter parsing refuses an unknown key at fsconfig(2) rather than at create.
            let refusedAtOnce =
                features.newMountAPI
                && {
                    let context = CUnionMount_fsopen("overlay", CUnionMount_FSOPEN_CLOEXEC)
                    defer { close(context) }
                    return CUnionMount_fsconfig(context, CUnionMount_FSCONFIG_SET_STRING, "no_such_option", "1", 0) != 0
                }()
            #expect(features.overlayParameterParsing == refusedAtOnce)
        }

        @Test("data-only layers: as probed, and as planned")
        func layerFeatures() throws {
            let (scratch, lowers, target) = try layers("data")
            defer { withExtendedLifetime(scratch) {} }
            // Some kernels also want metacopy=on for data-only layers (6.12 does, 6.18 does not: "lower data-only
            // dirs require metacopy support"); the layers are understood when either mount works.
            let dataOnly = "lowerdir=\(lowers[0].string)::\(lowers[1].string)"
            #expect(
                features.dataOnlyLayers
                    == (legacyMount(at: target, dataOnly) || legacyMount(at: target, dataOnly + ",metacopy=on")))
            // Through the planner (which adds metacopy=on for data-only layers): mounts wherever they are understood.
            let spec = OverlaySpec(lowerDirectories: [lowers[0]], dataDirectories: [lowers[1]])
            let planned = (try? Mounter(features: features).mount(.overlay(spec), at: target)) != nil
            if planned { #expect(umount2(target.string, 0) == 0) }
            #expect(features.dataOnlyLayers == planned)
        }

        @Test("statmount and listmount: as probed")
        func mountListing() throws {
            let listed = (try? Statmount.listMountIDs()) != nil
            #expect(features.listmount == listed)
            let root = try FileSystem.mountIdentity("/", unique: true)
            let stat = root.isUnique && (try? Statmount.stat(mountID: root.mountID, request: .mountBasic)) != nil
            #expect(features.statmount == stat)
        }
    }
}

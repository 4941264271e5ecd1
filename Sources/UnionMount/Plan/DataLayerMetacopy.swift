extension OverlaySpec {
    /// Asks for `metacopy=on` when the spec has data-only layers, leaves `metacopy` unset, and nothing in it
    /// conflicts with metacopy; what ``OverlayPlanner`` does before choosing a strategy.
    ///
    /// Data-only layers are reached only through the redirects of metacopy files in the lower layers. Kernels from
    /// 6.5 to 6.15 refuse them without `metacopy=on` ("lower data-only dirs require metacopy support"; Debian's
    /// 6.12 does), 6.16 and later follow those redirects with metacopy off as well. The kernel checks this only
    /// when the superblock is filled, so ``KernelFeatures`` cannot tell which kind of kernel this is without a
    /// mount; asking for metacopy works on both. It costs nothing that the spec had: with an upper layer,
    /// chmod/chown then copy up metadata only, and the upper layer depends on its lowers, which a stack of
    /// metacopy files over data layers does already. It is left out where it would turn a working mount into a
    /// refused one: outside the initial user namespace (metacopy needs trusted xattrs; there data-only layers
    /// work only with `userxattr` and metacopy off, on 6.16+), and next to `userxattr`, `nfs_export=on` or a
    /// `redirect_dir` other than `on`, which the kernel refuses together with `metacopy=on`. A caller's own
    /// `metacopy` value is kept.
    mutating func requestMetacopyForDataLayers(initialUserNamespace: Bool) {
        guard !dataDirectories.isEmpty, options.metacopy == nil, initialUserNamespace else { return }
        guard options.userXattr != true, options.nfsExport != true else { return }
        if let redirect = options.redirectDirectory, redirect != .on { return }
        options.metacopy = true
    }
}

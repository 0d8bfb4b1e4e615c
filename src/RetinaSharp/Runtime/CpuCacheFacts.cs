// Reference: Intel SDM vol. 2A, CPUID leaf 04H (deterministic cache parameters); AMD APM vol. 3, CPUID Fn8000_001D
// (cache topology). oneDNN (inside libtorch 2.10) sizes its brgemm convolution blocking from these leaves; a CPU (often a
// VM) that lists no caches there leaves those sizes at 0, and oneDNN's brgemm kernels then divide by zero (SIGFPE) or
// produce NaN. Linux exposes the same information under /sys/devices/system/cpu/cpu0/cache.
using System.Runtime.Intrinsics.X86;

namespace RetinaSharp.Runtime;

/// <summary>One cache level as a CPUID cache leaf describes it.</summary>
/// <param name="Level">1, 2, 3 …</param>
/// <param name="Kind">"data", "instruction" or "unified".</param>
/// <param name="SizeBytes">Ways × partitions × line size × sets.</param>
public readonly record struct CpuCache(int Level, string Kind, long SizeBytes);

/// <summary>
/// What this machine reports about its caches, read without running any libtorch kernel: the CPUID vendor, the
/// deterministic cache leaf (Intel leaf 4; AMD and Hygon leaf 0x8000001D) and whether Linux lists caches in sysfs.
/// Tests build it by hand (<see cref="FromCpuid"/> with a fake CPUID) to check the decision of
/// <see cref="OneDnnPolicy.Decide"/> on machines they do not run on.
/// </summary>
/// <param name="Vendor">CPUID vendor string ("GenuineIntel", "AuthenticAMD", …), or "" when CPUID is unavailable (not x86).</param>
/// <param name="CacheLeaf">The CPUID leaf the caches were read from (4 or 0x8000001D), or 0 when the CPU has none.</param>
/// <param name="Caches">The data and unified caches that leaf lists (instruction caches are left out); empty when it lists none.</param>
/// <param name="SysfsCacheEntries">Number of <c>/sys/devices/system/cpu/cpu0/cache/index*</c> folders (0 when absent or not Linux).</param>
public sealed record CpuCacheFacts(string Vendor, uint CacheLeaf, IReadOnlyList<CpuCache> Caches, int SysfsCacheEntries)
{
    /// <summary>True on x86 CPUs (CPUID answered).</summary>
    public bool IsX86 => Vendor.Length > 0;

    /// <summary>True when the CPUID cache leaf lists at least one data or unified cache with a non-zero size.</summary>
    public bool CpuidReportsCaches => Caches.Any(c => c.SizeBytes > 0);

    /// <summary>A CPUID implementation: (leaf, subleaf) -> (eax, ebx, ecx, edx).</summary>
    public delegate (uint Eax, uint Ebx, uint Ecx, uint Edx) CpuidFunction(uint leaf, uint subleaf);

    /// <summary>Reads this machine: CPUID through <see cref="X86Base.CpuId"/> and the sysfs cache folders.</summary>
    public static CpuCacheFacts Read()
    {
        int sysfs = CountSysfsCacheEntries("/sys/devices/system/cpu/cpu0/cache");
        if (!X86Base.IsSupported) return new CpuCacheFacts("", 0, [], sysfs);
        return FromCpuid(static (leaf, sub) =>
        {
            var (a, b, c, d) = X86Base.CpuId(unchecked((int)leaf), unchecked((int)sub));
            return (unchecked((uint)a), unchecked((uint)b), unchecked((uint)c), unchecked((uint)d));
        }, sysfs);
    }

    /// <summary>Decodes the vendor and the deterministic cache leaf from <paramref name="cpuid"/> (Intel SDM leaf 4 /
    /// AMD Fn8000_001D share one layout: EAX[4:0] type, EAX[7:5] level, EBX ways/partitions/line size, ECX sets).</summary>
    /// <param name="cpuid">The CPUID to ask (the real one, or a table in tests).</param>
    /// <param name="sysfsCacheEntries">What to report for the sysfs cache folders.</param>
    public static CpuCacheFacts FromCpuid(CpuidFunction cpuid, int sysfsCacheEntries)
    {
        ArgumentNullException.ThrowIfNull(cpuid);
        var (maxBasic, vb, vc, vd) = cpuid(0, 0);
        string vendor = Ascii(vb) + Ascii(vd) + Ascii(vc);
        uint maxExtended = cpuid(0x8000_0000, 0).Eax;
        bool amdLike = vendor is "AuthenticAMD" or "HygonGenuine";
        uint leaf = amdLike ? (maxExtended >= 0x8000_001D ? 0x8000_001Du : 0u) : (maxBasic >= 4 ? 4u : 0u);
        var caches = new List<CpuCache>();
        if (leaf != 0)
        {
            for (uint sub = 0; sub < 16; sub++)
            {
                var (a, b, c, _) = cpuid(leaf, sub);
                uint type = a & 0x1F;
                if (type == 0) break; // "no more caches"
                int level = (int)((a >> 5) & 0x7);
                long ways = ((b >> 22) & 0x3FF) + 1, partitions = ((b >> 12) & 0x3FF) + 1, line = (b & 0xFFF) + 1, sets = (long)c + 1;
                string kind = type switch { 1 => "data", 2 => "instruction", 3 => "unified", _ => "other" };
                if (kind is "data" or "unified") caches.Add(new CpuCache(level, kind, ways * partitions * line * sets));
            }
        }
        return new CpuCacheFacts(vendor, leaf, caches, sysfsCacheEntries);
    }

    /// <summary>One line for notices: "AuthenticAMD, CPUID leaf 0x8000001D lists no caches, no sysfs cache entries".</summary>
    public override string ToString()
    {
        if (!IsX86) return "not an x86 CPU";
        string leaf = CacheLeaf == 0 ? "no CPUID cache leaf" : $"CPUID leaf 0x{CacheLeaf:X}";
        string caches = Caches.Count == 0 ? "lists no caches"
            : "lists " + string.Join(", ", Caches.Select(c => $"L{c.Level} {c.SizeBytes / 1024} KiB"));
        string sysfs = SysfsCacheEntries == 0 ? "no sysfs cache entries" : $"{SysfsCacheEntries} sysfs cache entries";
        return $"{Vendor}, {leaf} {caches}, {sysfs}";
    }

    private static string Ascii(uint r) =>
        new(new[] { (char)(r & 0xFF), (char)((r >> 8) & 0xFF), (char)((r >> 16) & 0xFF), (char)(r >> 24) }.Where(ch => ch != '\0').ToArray());

    private static int CountSysfsCacheEntries(string folder)
    {
        try { return Directory.Exists(folder) ? Directory.GetDirectories(folder, "index*").Length : 0; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return 0; }
    }
}

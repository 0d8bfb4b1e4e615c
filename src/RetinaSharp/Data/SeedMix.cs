// Deterministic seed derivation (SplitMix64 finaliser, Steele et al. 2014) so that every random choice of the
// data pipeline depends only on (seed, epoch, index) and not on thread timing.
namespace RetinaSharp.Data;

/// <summary>Combines integers into a well-mixed 31-bit seed for <see cref="Random"/>.</summary>
internal static class SeedMix
{
    /// <summary>A seed in [0, int.MaxValue] that depends on all of <paramref name="a"/>, <paramref name="b"/>, <paramref name="c"/>.</summary>
    public static int Combine(long a, long b, long c)
    {
        ulong h = Mix((ulong)a + 0x9E3779B97F4A7C15UL);
        h = Mix(h ^ ((ulong)b + 0x632BE59BD9B4E019UL));
        h = Mix(h ^ ((ulong)c + 0x85157AF5UL));
        return (int)(h & 0x7FFFFFFF);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

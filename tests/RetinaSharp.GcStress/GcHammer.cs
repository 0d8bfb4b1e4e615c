namespace RetinaSharp.GcStress;

/// <summary>A background thread that calls <see cref="GC.Collect()"/> in a loop until disposed.</summary>
internal sealed class GcHammer : IDisposable
{
    private readonly Thread _thread;
    private volatile bool _stop;
    private long _collections;

    /// <summary>Milliseconds between collections (0 = yield only); GCSTRESS_PAUSE_MS overrides the default 1.</summary>
    private static readonly int PauseMilliseconds = int.TryParse(Environment.GetEnvironmentVariable("GCSTRESS_PAUSE_MS"), out int ms) ? ms : 1;

    public GcHammer()
    {
        _thread = new Thread(() =>
        {
            // Gen-0 collections (the implicitly created Scalars are young), a full one every 64th, and a short pause
            // between them so that the stressed thread, suspended during each collection, still makes progress.
            long n = 0;
            while (!_stop)
            {
                if (++n % 64 == 0) GC.Collect(); else GC.Collect(0);
                Interlocked.Increment(ref _collections);
                Thread.Sleep(PauseMilliseconds);
            }
        }) { IsBackground = true, Name = "gc-hammer" };
        _thread.Start();
    }

    /// <summary>Collections forced so far.</summary>
    public long Collections => Interlocked.Read(ref _collections);

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
    }
}

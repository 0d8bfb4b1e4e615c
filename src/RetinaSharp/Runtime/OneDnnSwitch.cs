// The process-wide oneDNN switch of OneDnnMode.ForwardOnly, shared by threads: network forward passes turn it on, backward
// passes need it off. libtorch's at::Context flag is one per process (not per thread), so the two kinds of region exclude
// each other here: a backward pass waits for other threads' forward passes to finish, and new forward passes wait while a
// backward pass runs or waits to run (so a stream of detections cannot starve training).
namespace RetinaSharp.Runtime;

/// <summary>
/// Reference-counted forward regions (oneDNN on) and backward regions (oneDNN off) over one process-wide switch, with the
/// two kinds mutually exclusive across threads. Nested regions on one thread never wait for each other. Used by
/// <see cref="TorchRuntime"/> in <see cref="OneDnnMode.ForwardOnly"/>.
/// </summary>
/// <param name="set">Sets the underlying switch (libtorch's at::Context::setUserEnabledMkldnn); called under the lock.</param>
internal sealed class OneDnnSwitch(Action<bool> set)
{
    private readonly object _gate = new();
    private readonly ThreadLocal<int> _threadForward = new();
    private readonly ThreadLocal<int> _threadBackward = new();
    private int _forward;          // open forward regions, all threads
    private int _backward;         // open backward regions, all threads
    private int _backwardWaiting;  // threads waiting to open a backward region

    /// <summary>Open forward regions over all threads (tests read it).</summary>
    internal int ForwardDepth { get { lock (_gate) return _forward; } }

    /// <summary>Threads waiting to open a backward region (tests read it).</summary>
    internal int BackwardWaiting { get { lock (_gate) return _backwardWaiting; } }

    /// <summary>The state the switch should have now: on while a forward region is open and no backward region is.</summary>
    internal bool WantsOn { get { lock (_gate) return _forward > 0 && _backward == 0; } }

    /// <summary>Opens a forward region (switch on unless a backward region of this thread is open).</summary>
    internal void EnterForward()
    {
        lock (_gate)
        {
            while ((_backward > 0 || _backwardWaiting > 0) && _threadBackward.Value == 0 && _threadForward.Value == 0)
                Monitor.Wait(_gate);
            _threadForward.Value++;
            if (_forward++ == 0 && _backward == 0) set(true);
        }
    }

    /// <summary>Closes a forward region opened by this thread.</summary>
    /// <exception cref="InvalidOperationException">This thread has no open forward region.</exception>
    internal void ExitForward()
    {
        lock (_gate)
        {
            if (_threadForward.Value == 0) throw new InvalidOperationException("no forward region is open on this thread");
            _threadForward.Value--;
            if (--_forward == 0 && _backward == 0) set(false);
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Opens a backward region (switch off), after other threads' forward regions have closed.</summary>
    internal void EnterBackward()
    {
        lock (_gate)
        {
            _backwardWaiting++;
            try
            {
                // Forward regions of this thread (a backward pass inside its own forward) are closed over, not waited for.
                while (_forward - _threadForward.Value > 0) Monitor.Wait(_gate);
            }
            finally { _backwardWaiting--; }
            _threadBackward.Value++;
            if (_backward++ == 0 && _forward > 0) set(false);
        }
    }

    /// <summary>Closes a backward region opened by this thread (switch back on if this thread's forward regions are open).</summary>
    /// <exception cref="InvalidOperationException">This thread has no open backward region.</exception>
    internal void ExitBackward()
    {
        lock (_gate)
        {
            if (_threadBackward.Value == 0) throw new InvalidOperationException("no backward region is open on this thread");
            _threadBackward.Value--;
            if (--_backward == 0 && _forward > 0) set(true);
            Monitor.PulseAll(_gate);
        }
    }
}

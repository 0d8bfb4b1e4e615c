// The process-wide oneDNN switch of OneDnnMode.ForwardOnly, shared by threads: network forward passes turn it on, backward
// passes need it off except inside the convolution backward of ConvolutionBackwardFunction, which computes gradients with
// forward kernels. libtorch's at::Context flag is one per process (not per thread), so the regions exclude each other here:
// a backward pass waits for other threads' forward passes and backward passes to finish, and new forward passes wait while
// a backward pass runs or waits to run (so a stream of detections cannot starve training).
namespace RetinaSharp.Runtime;

/// <summary>
/// Reference-counted forward regions (oneDNN on) and backward regions (oneDNN off; one thread at a time), mutually exclusive
/// across threads, and forward-kernel regions inside a backward region (oneDNN on for that thread's convolution
/// gradients). Nested regions on one thread never wait for each other. Used by <see cref="TorchRuntime"/> in
/// <see cref="OneDnnMode.ForwardOnly"/>.
/// </summary>
/// <param name="set">Sets the underlying switch (libtorch's at::Context::setUserEnabledMkldnn); called under the lock.</param>
internal sealed class OneDnnSwitch(Action<bool> set)
{
    private readonly object _gate = new();
    private readonly ThreadLocal<int> _threadForward = new();
    private int _forward;            // open forward regions, all threads
    private int _backwardOwner = -1; // managed thread id holding the backward region, or -1
    private int _backwardDepth;      // its nesting depth
    private int _kernelDepth;        // its open forward-kernel regions
    private int _backwardWaiting;    // threads waiting to open a backward region
    private bool _on;

    /// <summary>Open forward regions over all threads (tests read it).</summary>
    internal int ForwardDepth { get { lock (_gate) return _forward; } }

    /// <summary>Threads waiting to open a backward region (tests read it).</summary>
    internal int BackwardWaiting { get { lock (_gate) return _backwardWaiting; } }

    /// <summary>The state the switch has now (on inside forward regions and forward-kernel regions).</summary>
    internal bool WantsOn { get { lock (_gate) return _on; } }

    private static int Me => Environment.CurrentManagedThreadId;

    private void Apply()
    {
        bool on = _backwardOwner == -1 ? _forward > 0 : _kernelDepth > 0;
        if (on == _on) return;
        _on = on;
        set(on);
    }

    /// <summary>Opens a forward region (switch on unless this thread is inside a backward region).</summary>
    internal void EnterForward()
    {
        lock (_gate)
        {
            // Nested regions, and forwards inside this thread's own backward pass, never wait.
            while (_threadForward.Value == 0 && _backwardOwner != Me && (_backwardOwner != -1 || _backwardWaiting > 0))
                Monitor.Wait(_gate);
            _threadForward.Value++;
            _forward++;
            Apply();
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
            _forward--;
            Apply();
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Opens a backward region (switch off), after other threads' forward and backward regions have closed.</summary>
    internal void EnterBackward()
    {
        lock (_gate)
        {
            if (_backwardOwner == Me) { _backwardDepth++; return; }
            _backwardWaiting++;
            try
            {
                // Forward regions of this thread (a backward pass inside its own forward) are closed over, not waited for.
                while (_backwardOwner != -1 || _forward - _threadForward.Value > 0) Monitor.Wait(_gate);
            }
            finally { _backwardWaiting--; }
            _backwardOwner = Me;
            _backwardDepth = 1;
            Apply();
        }
    }

    /// <summary>Closes a backward region opened by this thread (switch back on if this thread's forward regions are open).</summary>
    /// <exception cref="InvalidOperationException">This thread holds no backward region.</exception>
    internal void ExitBackward()
    {
        lock (_gate)
        {
            if (_backwardOwner != Me) throw new InvalidOperationException("no backward region is open on this thread");
            if (--_backwardDepth == 0)
            {
                _backwardOwner = -1;
                _kernelDepth = 0;
            }
            Apply();
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>
    /// Opens a forward-kernel region: switch on for this thread's work inside its backward pass. Outside one (a plain
    /// <c>loss.backward()</c>), it first opens a backward region; the return value says so and goes to
    /// <see cref="ExitForwardKernels"/>.
    /// </summary>
    internal bool EnterForwardKernels()
    {
        bool opened = false;
        lock (_gate)
        {
            if (_backwardOwner != Me) { EnterBackward(); opened = true; }
            _kernelDepth++;
            Apply();
        }
        return opened;
    }

    /// <summary>Closes a forward-kernel region (and the backward region it opened, when <paramref name="openedBackward"/>).</summary>
    /// <exception cref="InvalidOperationException">This thread has no open forward-kernel region.</exception>
    internal void ExitForwardKernels(bool openedBackward)
    {
        lock (_gate)
        {
            if (_backwardOwner != Me || _kernelDepth == 0) throw new InvalidOperationException("no forward-kernel region is open on this thread");
            _kernelDepth--;
            Apply();
            if (openedBackward) ExitBackward();
        }
    }
}

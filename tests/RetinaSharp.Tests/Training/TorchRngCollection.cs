namespace RetinaSharp.Tests.Training;

/// <summary>
/// Tests that seed or read torch's process-wide generator (exact resume, model initialisation, the demo) run alone:
/// xunit runs other test classes in parallel, and any of them drawing random numbers would change ours.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchRngCollection
{
    /// <summary>The collection name.</summary>
    public const string Name = "Torch global RNG";
}

// Category agreement between a training set, a validation set and a model: the same ids with the same names
// (a model's label i is the training set's i-th category in id order, detectron2's contiguous-id convention), and
// for a model whose file stores its class names, label -> dataset category by name (torchvision keeps the names
// in its weights' meta data, `weights.meta["categories"]`, for the same purpose).
using RetinaSharp.Data;

namespace RetinaSharp.Cli;

/// <summary>Checks that two category lists agree and maps a model's labels to a dataset's categories by name.</summary>
internal static class CategoryMatch
{
    /// <summary>
    /// Throws unless <paramref name="other"/> has exactly the categories of <paramref name="reference"/> (same ids, same names).
    /// </summary>
    /// <param name="reference">The categories that define the model's labels (the training set).</param>
    /// <param name="other">The categories to compare (the validation set).</param>
    /// <param name="referenceOption">The option that gave <paramref name="reference"/>, e.g. <c>--data</c>.</param>
    /// <param name="otherOption">The option that gave <paramref name="other"/>, e.g. <c>--val</c>.</param>
    /// <exception cref="ArgumentException">The lists differ; the message names each differing category as "id name".</exception>
    public static void RequireSame(CategoryMap reference, CategoryMap other, string referenceOption, string otherOption)
    {
        var a = reference.Categories.ToDictionary(c => c.Id, c => c.Name);
        var b = other.Categories.ToDictionary(c => c.Id, c => c.Name);
        var lines = new List<string>();
        foreach (var (id, name) in a.OrderBy(kv => kv.Key))
        {
            if (!b.TryGetValue(id, out var n)) lines.Add($"id {id} '{name}': only in {referenceOption}");
            else if (n != name) lines.Add($"id {id}: '{name}' in {referenceOption}, '{n}' in {otherOption}");
        }
        foreach (var (id, name) in b.OrderBy(kv => kv.Key))
            if (!a.ContainsKey(id)) lines.Add($"id {id} '{name}': only in {otherOption}");
        if (lines.Count == 0) return;
        throw new ArgumentException(
            $"{otherOption}: its categories differ from those of {referenceOption} (the model's classes); give both the same categories " +
            "(a CSV without a classes.csv beside it, or a VOC folder, takes its classes from the boxes present, sorted by name: " +
            "put the same classes.csv (class,id rows) beside both CSV files):\n  " +
            string.Join("\n  ", lines.Take(20)) + (lines.Count > 20 ? $"\n  ... and {lines.Count - 20} more" : ""));
    }

    /// <summary>
    /// Model label -> dataset category id, by name: label i is <c>modelCategories[i].Name</c>.
    /// </summary>
    /// <param name="modelCategories">The class names stored with the model, in label order.</param>
    /// <param name="dataset">The dataset's categories.</param>
    /// <param name="weightsPath">The model file, for the message.</param>
    /// <returns>One dataset category id per label.</returns>
    /// <exception cref="ArgumentException">The names differ (as sets); the message lists the names only in the model and only in the dataset.</exception>
    public static long[] LabelsByName(IReadOnlyList<CocoCategory> modelCategories, CategoryMap dataset, string weightsPath)
    {
        var byName = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var c in dataset.Categories) byName.TryAdd(c.Name, c.Id);
        var modelNames = modelCategories.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        var onlyModel = modelCategories.Select(c => c.Name).Where(n => !byName.ContainsKey(n)).ToList();
        var onlyData = dataset.Categories.Select(c => c.Name).Where(n => !modelNames.Contains(n)).ToList();
        if (onlyModel.Count > 0 || onlyData.Count > 0 || modelNames.Count != modelCategories.Count || byName.Count != dataset.Count)
            throw new ArgumentException(
                $"--weights: the model in '{weightsPath}' was trained on other categories than the dataset's; " +
                $"only in the model: {Names(onlyModel)}; only in the dataset: {Names(onlyData)} " +
                "(categories are matched by name; give the dataset the model's class names, e.g. with --classes)");
        return modelCategories.Select(c => byName[c.Name]).ToArray();
    }

    private static string Names(List<string> names) =>
        names.Count == 0 ? "none" : string.Join(", ", names.Take(10).Select(n => $"'{n}'")) + (names.Count > 10 ? $" and {names.Count - 10} more" : "");
}

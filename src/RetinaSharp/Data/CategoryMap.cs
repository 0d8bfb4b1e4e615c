// Original category ids (COCO's 1-90 with gaps, VOC class names, CSV mapping ids) <-> the contiguous class
// indices 0..K-1 used inside the model, in increasing id order (the convention of detectron2's
// "thing_dataset_id_to_contiguous_id" for COCO). Every output maps indices back to the original ids.
namespace RetinaSharp.Data;

/// <summary>A bijection between original category ids and contiguous indices 0..K-1, ordered by increasing id.</summary>
public sealed class CategoryMap
{
    private readonly CocoCategory[] _categories;
    private readonly Dictionary<long, int> _index;

    /// <summary>Builds the map from categories with distinct ids; they are ordered by increasing id.</summary>
    /// <param name="categories">The categories (any order, any ids).</param>
    /// <exception cref="ArgumentException">Two categories share an id.</exception>
    public CategoryMap(IEnumerable<CocoCategory> categories)
    {
        ArgumentNullException.ThrowIfNull(categories);
        _categories = categories.OrderBy(c => c.Id).ToArray();
        _index = new Dictionary<long, int>(_categories.Length);
        for (int i = 0; i < _categories.Length; i++)
            if (!_index.TryAdd(_categories[i].Id, i))
                throw new ArgumentException($"duplicate category id {_categories[i].Id} ('{_categories[i].Name}')", nameof(categories));
    }

    /// <summary>The number of classes K.</summary>
    public int Count => _categories.Length;

    /// <summary>The categories in index order: <c>Categories[i]</c> has index i.</summary>
    public IReadOnlyList<CocoCategory> Categories => _categories;

    /// <summary>True when <paramref name="categoryId"/> is one of the map's original ids.</summary>
    public bool Contains(long categoryId) => _index.ContainsKey(categoryId);

    /// <summary>The contiguous index of an original id, or false when the id is unknown.</summary>
    public bool TryToIndex(long categoryId, out int index) => _index.TryGetValue(categoryId, out index);

    /// <summary>The contiguous index 0..K-1 of an original category id.</summary>
    /// <exception cref="ArgumentException">The id is not in the map.</exception>
    public int ToIndex(long categoryId) =>
        _index.TryGetValue(categoryId, out int i) ? i
            : throw new ArgumentException($"unknown category id {categoryId} (known: {string.Join(", ", _categories.Select(c => c.Id))})", nameof(categoryId));

    /// <summary>The original category id of a contiguous index.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The index is outside 0..K-1.</exception>
    public long ToCategoryId(int index) => Category(index).Id;

    /// <summary>The name of the class with contiguous index <paramref name="index"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The index is outside 0..K-1.</exception>
    public string Name(int index) => Category(index).Name;

    private CocoCategory Category(int index)
    {
        if ((uint)index >= (uint)_categories.Length)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"class index must be in 0..{_categories.Length - 1}");
        return _categories[index];
    }
}
